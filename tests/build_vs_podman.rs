//! Differential test: the same Containerfiles built by berth and by
//! `podman build` (buildah) from the same context and base give the same
//! config and the same file tree (types, modes, owners, contents, link
//! targets; times ignored, and the mount targets buildah leaves behind).

mod common;

use common::{Env, TempDir};
use std::collections::BTreeMap;
use std::path::Path;

/// A base image of busybox-static alone, as a tar both engines import.
fn base_tar(dir: &Path) -> std::path::PathBuf {
    let bin = std::fs::read("/bin/busybox").unwrap();
    let mut b = tar::Builder::new(Vec::new());
    let dirh = |name: &str, b: &mut tar::Builder<Vec<u8>>| {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Directory);
        h.set_mode(if name == "tmp/" { 0o1777 } else { 0o755 });
        h.set_size(0);
        b.append_data(&mut h, name, std::io::empty()).unwrap();
    };
    for d in ["bin/", "etc/", "tmp/", "var/"] {
        dirh(d, &mut b);
    }
    let mut h = tar::Header::new_gnu();
    h.set_mode(0o755);
    h.set_size(bin.len() as u64);
    b.append_data(&mut h, "bin/busybox", &bin[..]).unwrap();
    for applet in [
        "sh", "ls", "cat", "mkdir", "chmod", "chown", "rm", "echo", "ln", "touch", "mv",
    ] {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Symlink);
        h.set_mode(0o777);
        h.set_size(0);
        b.append_link(&mut h, format!("bin/{applet}"), "busybox")
            .unwrap();
    }
    let mut h = tar::Header::new_gnu();
    let passwd = b"root:x:0:0:root:/root:/bin/sh\nuser:x:1000:1000::/home/user:/bin/sh\n";
    h.set_mode(0o644);
    h.set_size(passwd.len() as u64);
    b.append_data(&mut h, "etc/passwd", &passwd[..]).unwrap();
    let group = b"root:x:0:\nuser:x:1000:\n";
    let mut h = tar::Header::new_gnu();
    h.set_mode(0o644);
    h.set_size(group.len() as u64);
    b.append_data(&mut h, "etc/group", &group[..]).unwrap();
    let p = dir.join("base.tar");
    std::fs::write(&p, b.into_inner().unwrap()).unwrap();
    p
}

const FILES: [(&str, &str); 31] = [
    (
        "basics",
        "FROM localhost/base\nENV A=1 B=\"two words\"\nWORKDIR /app\nCOPY a.txt .\nCOPY dir /app/dir\nCOPY dir/ /app/dir2/\nCOPY link /app/\nRUN mkdir -p /var/x && echo hi > /var/x/f && chmod 600 /var/x/f\nUSER 1000\nEXPOSE 80 53/udp\nLABEL k=v other=\"a b\"\nCMD echo hi\n",
    ),
    (
        "args",
        "ARG BASE=localhost/base\nFROM $BASE\nARG V=7\nENV FROM_ARG=$V\nRUN echo \"$V $FROM_ARG\" > /args\nENTRYPOINT [\"/bin/sh\", \"-c\"]\nCMD [\"cat /args\"]\n",
    ),
    (
        "stages",
        "FROM localhost/base AS build\nRUN mkdir -p /out/sub && echo tool > /out/tool && echo s > /out/sub/s && chmod 755 /out/tool\nFROM localhost/base\nCOPY --from=build /out/tool /usr/local/bin/tool\nCOPY --from=build /out /opt/out\nCOPY --chown=1000:1000 --chmod=0640 a.txt /owned/a.txt\n",
    ),
    (
        "deletes",
        "FROM localhost/base\nRUN rm /bin/ls && mkdir -p /var/d && echo 1 > /var/d/one\nRUN rm -rf /var/d && mkdir /var/d && echo 2 > /var/d/two\nCOPY a.txt /etc/passwd\n",
    ),
    (
        "add",
        "FROM localhost/base\nADD pack.tar.gz /unpacked/\nADD a.txt /plain/\nVOLUME /data\nSTOPSIGNAL SIGINT\nWORKDIR one\nWORKDIR two\nSHELL [\"/bin/sh\", \"-c\"]\nRUN pwd > /where\n",
    ),
    (
        "globs",
        "FROM localhost/base\nCOPY *.txt /texts/\nCOPY dir/sub /deep/new/path\nRUN mkdir -m 0750 /home && chown 1000:1000 /home\nCOPY a.txt /home/a.txt\n",
    ),
    (
        "env-expansion",
        "FROM localhost/base\nENV DIR=/srv/app NAME=x\nWORKDIR $DIR\nENV PATH=$DIR/bin:$PATH\nCOPY a.txt ${NAME}.txt\nLABEL where=\"$DIR\"\n",
    ),
    (
        "through-links",
        "FROM localhost/base\nRUN mkdir -p /real && ln -s /real /linked\nCOPY a.txt /linked/\nCOPY dir /linked/dir\n",
    ),
    (
        "replace-types",
        "FROM localhost/base\nRUN mkdir -p /x/d && echo f > /x/f\nRUN rm -rf /x/d && echo now-a-file > /x/d && rm /x/f && mkdir /x/f\n",
    ),
    (
        "cmd-forms",
        "FROM localhost/base\nENTRYPOINT echo entry\nCMD [\"ignored\"]\nEXPOSE 8080/tcp 9000\nUSER user\n",
    ),
    (
        "heredoc-free-run",
        "FROM localhost/base\nUSER 1000:1000\nRUN echo as-user > /tmp/mine\nUSER root\nRUN ln -s /tmp/mine /link && touch /empty\n",
    ),
    (
        "arg-scoping",
        "ARG X=global\nARG G=g\nFROM localhost/base\nARG X\nRUN echo \"$X [$G]\" > /x\nARG Y=local\nENV Y2=$Y\n",
    ),
    (
        "env-forms",
        "FROM localhost/base\nENV K1 v1 and more\nENV K2=v2 K3=\"${K1}-x\" K4=${K9:-dflt}\nRUN echo \"$K3 $K4\" > /k3\n",
    ),
    (
        "workdir-relative",
        "FROM localhost/base\nWORKDIR /a\nWORKDIR b\nWORKDIR ../c\nRUN pwd > /pwd\nCOPY a.txt ./\n",
    ),
    (
        "workdir-as-user",
        "FROM localhost/base\nUSER user\nWORKDIR /made/by/workdir\nRUN pwd > /tmp/p\n",
    ),
    (
        "copy-trees",
        "FROM localhost/base\nCOPY dir /target/\nCOPY dir/ /t2\nCOPY a.txt b.txt /multi/\nCOPY a.txt /renamed.txt\nCOPY a.txt /very/deep/dir/tree/\n",
    ),
    (
        "copy-whole-context",
        "FROM localhost/base\nCOPY . /all/\n",
    ),
    (
        "chown-chmod",
        "FROM localhost/base\nCOPY --chown=user:user dir /owned-dir\nCOPY --chmod=700 dir /private\nARG UID=1000\nCOPY --chown=$UID a.txt /u.txt\nUSER 1000\nCOPY a.txt /as-user.txt\n",
    ),
    (
        "labels-continued",
        "FROM localhost/base\nLABEL \"spaced key\"=\"v w\" multi=1 \\\n  two=2\nLABEL multi=overridden\nMAINTAINER someone <a@b.c>\n",
    ),
    (
        "shell-cmd",
        "FROM localhost/base\nSHELL [\"/bin/sh\", \"-e\", \"-c\"]\nRUN echo shell > /s\n",
    ),
    (
        "entrypoint-exec-cmd-shell",
        "FROM localhost/base\nENTRYPOINT [\"/bin/cat\"]\nCMD /etc/passwd\n",
    ),
    (
        "volume-forms",
        "FROM localhost/base\nVOLUME [\"/v1\", \"/v2\"]\nVOLUME /v3 /v4\nSTOPSIGNAL 9\nRUN echo after > /after\n",
    ),
    (
        "run-exec-form",
        "FROM localhost/base\nRUN [\"/bin/sh\", \"-c\", \"echo exec > /exec\"]\nRUN [\"/bin/busybox\", \"touch\", \"/touched\"]\n",
    ),
    (
        "escape-directive",
        "# escape=`\nFROM localhost/base\nRUN echo a `\n  && echo b > /esc\nCOPY a.txt /esc-copied\n",
    ),
    (
        "stage-by-index",
        "FROM localhost/base\nRUN echo zero > /z\nFROM localhost/base\nCOPY --from=0 /z /z\n",
    ),
    (
        "stage-as-base",
        "FROM localhost/base AS one\nENV ONE=1\nRUN echo 1 > /one\nFROM one\nRUN echo \"$ONE 2\" > /two\n",
    ),
    (
        "delete-base-files",
        "FROM localhost/base\nRUN rm /etc/group /bin/cat\nRUN rm -r /var && mkdir /var && touch /var/fresh\n",
    ),
    (
        "modes-and-links",
        "FROM localhost/base\nRUN mkdir -m 2775 /sgid && touch /sgid/f && chmod 4755 /sgid/f && ln -s ../sgid/f /bin/f && ln /sgid/f /hard\n",
    ),
    (
        "expose-forms",
        "FROM localhost/base\nEXPOSE 80/tcp 80/udp 443\nEXPOSE 8000-8002\n",
    ),
    (
        "env-path-user",
        "FROM localhost/base\nENV PATH=/opt/bin:$PATH HOME=/root\nUSER user:user\nRUN id -u > /tmp/uid 2>/dev/null || echo none > /tmp/uid\n",
    ),
    (
        "onbuild-free-multi",
        "FROM localhost/base AS a\nRUN echo a > /a\nFROM localhost/base AS b\nRUN echo b > /b\nFROM localhost/base\nCOPY --from=a /a /a\nCOPY --from=b /b /b\n",
    ),
];

fn context(dir: &Path) {
    std::fs::create_dir_all(dir.join("dir/sub")).unwrap();
    std::fs::write(dir.join("a.txt"), "a\n").unwrap();
    std::fs::write(dir.join("b.txt"), "b\n").unwrap();
    std::fs::write(dir.join("dir/b.txt"), "b\n").unwrap();
    std::fs::write(dir.join("dir/sub/c.txt"), "c\n").unwrap();
    std::os::unix::fs::symlink("a.txt", dir.join("link")).unwrap();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    {
        let mut b = tar::Builder::new(&mut gz);
        let mut h = tar::Header::new_gnu();
        h.set_size(4);
        h.set_mode(0o640);
        h.set_uid(12);
        h.set_gid(34);
        b.append_data(&mut h, "inside/packed.txt", &b"tar\n"[..])
            .unwrap();
        b.finish().unwrap();
    }
    std::fs::write(dir.join("pack.tar.gz"), gz.finish().unwrap()).unwrap();
    for (name, text) in FILES {
        std::fs::write(dir.join(format!("{name}.Containerfile")), text).unwrap();
    }
}

/// The config fields both engines set, normalized (buildah's own label
/// left out, empty maps as absent).
fn config_of(inspect: &[u8]) -> BTreeMap<String, serde_json::Value> {
    let v: serde_json::Value = serde_json::from_slice(inspect).unwrap();
    let c = &v[0]["Config"];
    let mut out = BTreeMap::new();
    for k in [
        "Env",
        "Cmd",
        "Entrypoint",
        "WorkingDir",
        "User",
        "ExposedPorts",
        "Volumes",
        "Labels",
        "StopSignal",
    ] {
        let mut val = c[k].clone();
        if let Some(m) = val.as_object_mut() {
            m.remove("io.buildah.version");
        }
        let empty = val.is_null()
            || val.as_object().is_some_and(|m| m.is_empty())
            || val.as_array().is_some_and(|a| a.is_empty())
            || val.as_str().is_some_and(|s| s.is_empty());
        if !empty {
            out.insert(k.to_string(), val);
        }
    }
    out
}

/// A root filesystem tar as sorted lines: type, mode, owner, path, link
/// target, content digest. The runtime's mount targets are left out.
fn tree_of(tar_bytes: &[u8]) -> Vec<String> {
    let mut a = tar::Archive::new(tar_bytes);
    let mut lines = Vec::new();
    let mut digests: BTreeMap<String, String> = BTreeMap::new();
    for e in a.entries().unwrap() {
        let mut e = e.unwrap();
        let name = e.path().unwrap().display().to_string();
        let name = name
            .trim_start_matches("./")
            .trim_end_matches('/')
            .to_string();
        let top = name.split('/').next().unwrap_or("");
        if name.is_empty()
            || ["proc", "sys", "dev", "run"].contains(&top)
            || ["etc/hostname", "etc/hosts", "etc/resolv.conf"].contains(&name.as_str())
        {
            continue;
        }
        let h = e.header().clone();
        // A hard link is shown as the file it shares data with: which of
        // the names a tar writes first is the writer's choice.
        let kind = match h.entry_type() {
            tar::EntryType::Directory => "d",
            tar::EntryType::Symlink => "l",
            _ => "f",
        };
        let hard_target = (h.entry_type() == tar::EntryType::Link).then(|| {
            let t = e.link_name().unwrap().unwrap().display().to_string();
            t.trim_start_matches("./").to_string()
        });
        let link = e
            .link_name()
            .unwrap()
            .map(|l| l.display().to_string())
            .filter(|_| kind == "l")
            .unwrap_or_default();
        let mut data = Vec::new();
        std::io::Read::read_to_end(&mut e, &mut data).unwrap();
        let digest = match (&hard_target, kind) {
            (Some(t), _) => digests.get(t).cloned().unwrap_or_default(),
            (None, "f") => {
                format!("{:x}", <sha2::Sha256 as sha2::Digest>::digest(&data))[..12].to_string()
            }
            _ => String::new(),
        };
        if kind == "f" {
            digests.insert(name.clone(), digest.clone());
        }
        lines.push(format!(
            "{kind} {:o} {}:{} {name} {link} {digest}",
            h.mode().unwrap() & 0o7777,
            h.uid().unwrap(),
            h.gid().unwrap()
        ));
    }
    lines.sort();
    lines
}

#[test]
fn builds_match_podman_build() {
    let podman = match common::podman::Podman::new() {
        Ok(p) => p,
        Err(why) => {
            common::skip("builds_match_podman_build", &why);
            return;
        }
    };
    let env = Env::root();
    let work = TempDir::new("vs-podman");
    let base = base_tar(work.path());
    let ctx = work.path().join("ctx");
    context(&ctx);
    podman.ok(&["import", "-q", base.to_str().unwrap(), "localhost/base"]);
    env.berth(&["import", "-q", base.to_str().unwrap(), "base"])
        .ok();
    let c = ctx.to_str().unwrap();
    let mut differences = Vec::new();
    for (name, _) in FILES {
        let file = ctx.join(format!("{name}.Containerfile"));
        let f = file.to_str().unwrap();
        let tag = format!("localhost/vs-{name}");
        podman.ok(&["build", "-q", "--network", "none", "-f", f, "-t", &tag, c]);
        env.berth(&["build", "-q", "--network", "none", "-f", f, "-t", &tag, c])
            .ok();
        let pc = config_of(&podman.ok(&["image", "inspect", &tag]));
        let bc = config_of(env.berth(&["image", "inspect", &tag]).ok().as_bytes());
        if pc != bc {
            differences.push(format!("{name}: config\n  podman {pc:?}\n  berth  {bc:?}"));
        }
        let cname = format!("vs-{name}");
        podman.ok(&["create", "--name", &cname, &tag, "true"]);
        let pt = tree_of(&podman.ok(&["export", &cname]));
        env.berth(&["create", "--name", &cname, &tag, "true"]).ok();
        let bt = tree_of(&env.cmd(&["export", &cname]).output().unwrap().stdout);
        // An /etc that buildah made only for its mount targets.
        let strip = |t: Vec<String>| -> Vec<String> {
            let has_etc = t.iter().any(|l| l.contains(" etc/"));
            t.into_iter()
                .filter(|l| has_etc || !l.ends_with(" etc  "))
                .collect()
        };
        let (pt, bt) = (strip(pt), strip(bt));
        if pt != bt {
            let only_p: Vec<_> = pt.iter().filter(|l| !bt.contains(l)).collect();
            let only_b: Vec<_> = bt.iter().filter(|l| !pt.contains(l)).collect();
            differences.push(format!(
                "{name}: files\n  only podman {only_p:?}\n  only berth  {only_b:?}"
            ));
        }
    }
    assert!(differences.is_empty(), "{}", differences.join("\n"));
}
