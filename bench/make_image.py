#!/usr/bin/env python3
"""Writes an OCI image layout with N layers of incompressible data, for
pull benchmarks. Usage: make_image.py DIR LAYERS MB_PER_LAYER"""
import gzip, hashlib, io, json, os, sys, tarfile, time

out, layers, mb = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
blobs = os.path.join(out, "blobs", "sha256")
os.makedirs(blobs, exist_ok=True)

def put(data):
    d = hashlib.sha256(data).hexdigest()
    with open(os.path.join(blobs, d), "wb") as f:
        f.write(data)
    return "sha256:" + d, len(data)

descs, diffs = [], []
for i in range(layers):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.GNU_FORMAT) as t:
        for j in range(4):
            payload = os.urandom(mb * 1024 * 1024 // 4)
            info = tarfile.TarInfo(f"layer{i}/file{j}")
            info.size, info.mtime = len(payload), int(time.time())
            t.addfile(info, io.BytesIO(payload))
    raw = buf.getvalue()
    diffs.append("sha256:" + hashlib.sha256(raw).hexdigest())
    d, n = put(gzip.compress(raw, compresslevel=1))
    descs.append({"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": d, "size": n})
config = json.dumps({"architecture": "amd64", "os": "linux", "config": {"Cmd": ["/bin/sh"]},
                     "rootfs": {"type": "layers", "diff_ids": diffs}}).encode()
cd, cn = put(config)
manifest = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                       "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cd, "size": cn},
                       "layers": descs}).encode()
md, mn = put(manifest)
with open(os.path.join(out, "oci-layout"), "w") as f:
    f.write('{"imageLayoutVersion":"1.0.0"}')
with open(os.path.join(out, "index.json"), "w") as f:
    json.dump({"schemaVersion": 2, "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json",
              "digest": md, "size": mn, "annotations": {"org.opencontainers.image.ref.name": "big"}}]}, f)
print(sum(len(open(os.path.join(blobs, b[7:]), "rb").read()) for b in [x["digest"] for x in descs]))
