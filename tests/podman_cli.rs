//! The podman command line that scripts (and podman's own system tests)
//! lean on: container verbs under `container`, flags given twice, `--ignore`,
//! Go templates, `info`/`version`/`system df`, and the event journal.

mod common;

use common::{busybox_image, Env};

#[test]
fn container_verbs_and_flags_behave_as_podman() {
    let env = Env::root();
    let img = busybox_image(&env);
    // Every container verb is also under `container`; an unknown name is 1.
    env.berth(&["container", "rm", "bogus"])
        .fails(1, "no such container");
    env.berth(&["container", "rm", "--ignore", "bogus"]).ok();
    env.berth(&["rm", "-t", "0", "--all", "--force", "--ignore"])
        .ok();
    env.berth(&["rmi", "--ignore", "bogus"]).ok();
    // The last of a flag given twice wins, as podman's parser has it.
    env.berth(&["run", "--name", "ignore-me", "--name", "two", img, "true"])
        .ok();
    let names = env.berth(&["ps", "-a", "--external", "--format", "{{.Names}}"]);
    assert_eq!(names.ok().trim(), "two");
    let out = env.berth(&["container", "inspect", "--format", "{{.Name}}", "two"]);
    assert_eq!(out.ok().trim(), "two");
    // --noheading and --sort on ps.
    env.berth(&["create", "--name", "one", img, "true"]).ok();
    let rows = env.berth(&["ps", "-a", "--noheading", "--sort", "names"]);
    let rows: Vec<&str> = rows.ok().lines().collect();
    assert_eq!(rows.len(), 2, "{rows:?}");
    assert!(
        rows[0].ends_with("one") && rows[1].ends_with("two"),
        "{rows:?}"
    );
    env.berth(&["ps", "--sort", "bogus"])
        .fails(125, "invalid --sort");
    // --noout keeps stdout empty; the command still does its work.
    let r = env.berth(&["--noout", "rm", "one", "two"]);
    assert_eq!(r.ok(), "");
    assert_eq!(env.berth(&["container", "exists", "one"]).code, 1);
    // --remote is refused in one line, not taken as a command.
    env.berth(&["--remote", "ps"]).fails(125, "no remote mode");
    // podman's own words, first on the line, exit 1.
    let r = env.berth(&["--log-level=telepathic", "ps"]);
    assert_eq!(r.code, 1);
    assert!(
        r.stderr
            .starts_with("Log Level \"telepathic\" is not supported"),
        "{}",
        r.stderr
    );
    env.assert_consistent();
}

#[test]
fn templates_take_pipes_literals_and_functions() {
    let env = Env::root();
    let img = busybox_image(&env);
    env.berth(&[
        "create",
        "--name",
        "tpl",
        "--label",
        "team=blue",
        img,
        "true",
    ])
    .ok();
    let f = |t: &str| {
        env.berth(&["ps", "-a", "--format", t])
            .ok()
            .trim_end()
            .to_string()
    };
    let id = f("{{.ID}}");
    assert_eq!(id.len(), 12);
    assert_eq!(f("{{.ID | upper}}"), id.to_uppercase());
    assert_eq!(f(r#"{{.Names}}{{"\n"}}"#), "tpl");
    assert_eq!(f("{{truncate .Names 2}}"), "tp");
    assert_eq!(f(r#"{{index .Labels "team"}}"#), "blue");
    assert_eq!(f("{{json .Names}}"), "\"tpl\"");
    assert_eq!(f("{{if .Names}}named{{end}}"), "named");
    assert_eq!(f("table {{.Names}}"), "NAMES\ntpl");
    let bare = env.berth(&["ps", "-a", "--noheading", "--format", "table {{.Names}}"]);
    assert_eq!(bare.ok(), "tpl\n");
    let r = env.berth(&["ps", "-a", "--format", "{{nosuch .Names}}"]);
    r.fails(125, "invalid --format template");
    // Lists print as Go prints them.
    let cmd = env.berth(&["container", "inspect", "--format", "{{.Config.Cmd}}", "tpl"]);
    assert_eq!(cmd.ok().trim(), "[true]");
    env.berth(&["rm", "tpl"]).ok();
}

#[test]
fn info_version_and_disk_use_report_the_store() {
    let env = Env::root();
    let img = busybox_image(&env);
    let info = env.berth(&["info", "--format", "json"]);
    let v: serde_json::Value = serde_json::from_str(info.ok()).unwrap();
    assert_eq!(v["store"]["imageStore"]["number"], 1);
    assert_eq!(
        v["store"]["graphRoot"].as_str().unwrap(),
        env.dir.path().join("store").to_str().unwrap()
    );
    let t = env.berth(&[
        "info",
        "--format",
        "{{.Host.OCIRuntime.Name}}/{{.Store.ImageStore.Number}}/{{.Host.Security.Rootless}}",
    ]);
    assert_eq!(t.ok().trim(), "berth/1/false");
    let yaml = env.berth(&["info"]);
    assert!(yaml.ok().contains("graphRoot:"), "{}", yaml.stdout);
    let ver = env.berth(&["version"]);
    assert!(ver.ok().starts_with("Version:"), "{}", ver.stdout);
    let built = ver
        .stdout
        .lines()
        .find(|l| l.starts_with("Built:"))
        .unwrap();
    assert!(!built.contains("1970"), "{built}");
    env.berth(&["run", "--name", "c1", "-v", "/data", img, "true"])
        .ok();
    let df = env.berth(&[
        "system",
        "df",
        "--format",
        "{{.Type}}:{{.Total}}:{{.Active}}",
    ]);
    assert_eq!(
        df.ok().lines().collect::<Vec<_>>(),
        ["Images:1:1", "Containers:1:0", "Local Volumes:1:1"]
    );
    env.berth(&["rm", "-v", "c1"]).ok();
    // A volume's symlink to the host's / is counted as a link, never followed.
    env.berth(&["volume", "create", "hostile"]).ok();
    env.berth(&[
        "run",
        "--rm",
        "-v",
        "hostile:/v",
        img,
        "ln",
        "-s",
        "/",
        "/v/root",
    ])
    .ok();
    let vols = env.berth(&["system", "df", "--format", "{{.Type}}={{.Size}}"]);
    let line = vols
        .ok()
        .lines()
        .find(|l| l.starts_with("Local Volumes="))
        .unwrap()
        .to_string();
    assert!(line.ends_with(" B") && !line.contains("kB"), "{line}");
}

#[test]
fn images_list_digest_names_sorts_and_filters_by_age() {
    let env = Env::root();
    let img = busybox_image(&env);
    let id = env.berth(&["inspect", "--format", "{{.Id}}", img]);
    let id = id.ok().trim().to_string();
    env.berth(&["run", "--name", "c", img, "true"]).ok();
    env.berth(&["commit", "-q", "c", "newer"]).ok();
    let f = "{{.Repository}}";
    let after = env.berth(&[
        "images",
        "--noheading",
        "--filter",
        &format!("after={id}"),
        "--format",
        f,
    ]);
    assert_eq!(after.ok().trim(), "localhost/newer");
    let before = env.berth(&["images", "--filter", "before=newer", "--format", f]);
    assert_eq!(before.ok().trim(), "localhost/busybox");
    let sorted = env.berth(&["images", "--sort", "repository", "--format", f]);
    assert_eq!(
        sorted.ok().lines().collect::<Vec<_>>(),
        ["localhost/busybox", "localhost/newer"]
    );
    let created = env.berth(&["images", "--format", "{{.CreatedAt}}", "newer"]);
    assert!(
        created.ok().trim().ends_with(" +0000 UTC"),
        "{}",
        created.stdout
    );
    env.berth(&["rm", "c"]).ok();
}

#[test]
fn events_journal_what_commands_did() {
    let env = Env::root();
    let img = busybox_image(&env);
    env.berth(&["run", "--rm", "--name", "ev", "--label", "k=v", img, "true"])
        .ok();
    env.berth(&["tag", img, "evtag"]).ok();
    let all = env.berth(&["events", "--stream=false"]);
    let lines: Vec<&str> = all.ok().lines().collect();
    let statuses: Vec<&str> = lines
        .iter()
        .filter_map(|l| l.split_whitespace().nth(5))
        .collect();
    assert_eq!(
        statuses,
        ["create", "start", "died", "remove", "tag"],
        "{lines:?}"
    );
    assert!(
        lines[1].contains(&format!("(image={img}, name=ev, k=v)"))
            || lines[1].contains("name=ev") && lines[1].contains("k=v"),
        "{}",
        lines[1]
    );
    let f = env.berth(&[
        "events",
        "--stream=false",
        "--filter",
        "container=ev",
        "--filter",
        "container=other",
        "--filter",
        "event=died",
        "--format",
        "{{.Name}}--{{.Status}}",
    ]);
    assert_eq!(f.ok().trim(), "ev--died");
    let label = env.berth(&[
        "events",
        "--stream=false",
        "-f",
        "label=k=v",
        "-f",
        "event=start",
    ]);
    assert_eq!(label.ok().lines().count(), 1);
    // The none backend records nothing and cannot be read.
    env.berth(&["--events-backend", "none", "untag", img, "evtag"])
        .ok();
    let after = env.berth(&["events", "--stream=false", "--filter", "type=image"]);
    assert_eq!(after.ok().lines().count(), 1, "{}", after.stdout);
    env.berth(&["--events-backend", "none", "events"])
        .fails(125, "\"none\" backend");
}

#[test]
fn all_and_filter_flags_pick_the_right_containers() {
    let env = Env::root();
    let img = busybox_image(&env);
    let ok = env.berth(&["run", "--name", "zero", img, "true"]);
    ok.ok();
    assert_eq!(env.berth(&["run", "--name", "one", img, "false"]).code, 1);
    // start --all with names is refused; with a filter it starts only what passes.
    env.berth(&["start", "--all", "zero"])
        .fails(125, "either start all containers or the container(s)");
    let started = env.berth(&["start", "--all", "--filter", "exited=0"]);
    assert_eq!(started.ok().trim().len(), 64, "{}", started.stdout);
    let zero = env.berth(&["inspect", "--format", "{{.Id}}", "zero"]);
    assert_eq!(started.stdout.trim(), zero.ok().trim());
    env.berth(&["wait", "zero"]).ok();
    let none = env.berth(&["start", "--filter", "restart-policy=always", "one"]);
    assert_eq!(none.ok().trim(), "");
    env.berth(&["start", "--filter", "restart-policy=bogus", "one"])
        .fails(125, "bogus invalid restart policy");
    let exited = env.berth(&["ps", "-a", "--filter", "exited=1", "--format", "{{.Names}}"]);
    assert_eq!(exited.ok().trim(), "one");
    // stop --ignore says nothing of a name it does not know.
    env.berth(&["stop", "nosuch"]).fails(
        125,
        "no container with name or ID \"nosuch\" found: no such container",
    );
    assert_eq!(env.berth(&["stop", "--ignore", "nosuch"]).ok(), "");
    // kill -a signals only running containers (none here).
    assert_eq!(env.berth(&["kill", "-a"]).ok(), "");
    env.berth(&["rm", "zero", "one"]).ok();
}

#[test]
fn logs_of_several_containers_carry_their_ids() {
    let env = Env::root();
    let img = busybox_image(&env);
    env.berth(&["run", "--name", "a", img, "echo", "from-a"])
        .ok();
    env.berth(&["run", "--name", "b", img, "echo", "from-b"])
        .ok();
    let id = |n: &str| {
        let r = env.berth(&["inspect", "--format", "{{.Id}}", n]);
        r.ok().trim()[..12].to_string()
    };
    let out = env.berth(&["logs", "a", "b"]);
    assert_eq!(
        out.ok().lines().collect::<Vec<_>>(),
        [format!("{} from-a", id("a")), format!("{} from-b", id("b"))]
    );
    // One container: no prefix, as before.
    assert_eq!(env.berth(&["logs", "a"]).ok(), "from-a\n");
    env.berth(&["rm", "a", "b"]).ok();
}

#[test]
fn volumes_filter_by_regex_and_refuse_removal_in_use_with_2() {
    let env = Env::root();
    let img = busybox_image(&env);
    for v in ["volume_1a", "volume_1b", "other"] {
        env.berth(&["volume", "create", v]).ok();
    }
    let r = env.berth(&[
        "volume",
        "ls",
        "--filter",
        "name=volume_1.+",
        "--format",
        "{{.Name}}",
    ]);
    assert_eq!(
        r.ok().lines().collect::<Vec<_>>(),
        ["volume_1a", "volume_1b"]
    );
    let bare = env.berth(&["volume", "ls", "--noheading"]);
    assert_eq!(bare.ok().lines().count(), 3, "{}", bare.stdout);
    env.berth(&["create", "--name", "user", "-v", "other:/data", img, "true"])
        .ok();
    env.berth(&["volume", "rm", "other"])
        .fails(2, "being used by");
    env.berth(&["volume", "rm", "--force", "other"]).ok();
    assert_eq!(env.berth(&["container", "exists", "user"]).code, 1);
    // --memory 0 means no limit, as podman has it.
    let r = env.berth(&["run", "--rm", "--memory", "0", img, "echo", "hi"]);
    assert_eq!(r.ok(), "hi\n");
}

#[test]
fn cp_takes_tars_paths_relative_to_workdir_and_copies_between_containers() {
    let env = Env::root();
    let img = busybox_image(&env);
    env.berth(&["run", "-d", "--name", "a", "-w", "/tmp", img, "sleep", "60"])
        .ok();
    env.berth(&["create", "--name", "b", img, "true"]).ok();
    // A gzipped tar on stdin unpacks into a directory of the container.
    let src = env.dir.path().join("home/src");
    std::fs::create_dir_all(src.join("dir/sub")).unwrap();
    std::fs::write(src.join("dir/sub/f"), "in the tar\n").unwrap();
    let tgz = env.dir.path().join("home/t.tgz");
    let st = std::process::Command::new("tar")
        .arg("-C")
        .arg(&src)
        .arg("-zcf")
        .arg(&tgz)
        .arg("dir")
        .status()
        .unwrap();
    assert!(st.success());
    let mut c = env.cmd(&["cp", "-", "a:/tmp"]);
    c.stdin(std::fs::File::open(&tgz).unwrap());
    common::Run::from(c.output().unwrap()).ok();
    // Relative container paths start at the workdir.
    let got = env.berth(&["exec", "a", "cat", "dir/sub/f"]);
    assert_eq!(got.ok(), "in the tar\n");
    // `-` as the destination is a tar on stdout.
    let out = env.cmd(&["cp", "a:dir/sub", "-"]).output().unwrap();
    assert!(out.status.success());
    let mut names: Vec<String> = tar::Archive::new(&out.stdout[..])
        .entries()
        .unwrap()
        .map(|e| e.unwrap().path().unwrap().display().to_string())
        .collect();
    names.sort();
    assert_eq!(names, ["sub", "sub/f"]);
    // DIR/. copies what is in DIR; a container to another (created) one,
    // under a new name.
    let dot = format!("{}/dir/.", src.display());
    env.berth(&["cp", &dot, "a:/tmp/dir"]).ok();
    env.berth(&["cp", "a:/tmp/dir/sub/f", "b:/renamed"]).ok();
    env.berth(&["start", "-a", "b"]).ok();
    let host = env.dir.path().join("home/back");
    env.berth(&["cp", "b:/renamed", host.to_str().unwrap()])
        .ok();
    assert_eq!(std::fs::read_to_string(&host).unwrap(), "in the tar\n");
    // podman's words where scripts look for them.
    env.berth(&["cp", "a:nosuch", "/tmp"])
        .fails(125, "\"nosuch\" could not be found on container a");
    env.berth(&["cp", "/nonexistent-berth-path", "a:/tmp"])
        .fails(125, "could not be found on the host");
    env.berth(&["cp", src.to_str().unwrap(), "a:/bin/sh"])
        .fails(
            125,
            "destination must be a directory when copying a directory",
        );
    env.berth(&["cp", "--pause=false", "-a=false", &dot, "a:/tmp"])
        .ok();
    env.berth(&["rm", "-f", "a", "b"]).ok();
    env.assert_consistent();
}

#[test]
fn history_templates_keep_tabs_and_network_ls_drops_its_header() {
    let env = Env::root();
    let img = busybox_image(&env);
    let h = env.berth(&["history", "--format", "{{.ID}}\t{{.Created}}", img]);
    let line = h.ok().lines().next().unwrap().to_string();
    assert!(line.contains('\t') && line.ends_with(" ago"), "{line:?}");
    let j: serde_json::Value =
        serde_json::from_str(env.berth(&["history", "--format", "json", img]).ok()).unwrap();
    assert!(j[0]["id"].as_str().unwrap().len() == 64, "{j}");
    assert!(j[0]["created"].is_string() && j[0]["size"].is_u64(), "{j}");
    let nets = env.berth(&["network", "ls", "--noheading"]);
    assert!(!nets.ok().contains("NETWORK ID"), "{}", nets.stdout);
    assert!(!nets.stdout.trim().is_empty());
}

#[test]
fn rm_echoes_its_arguments_and_diff_leaves_out_the_runtime_s_files() {
    let env = Env::root();
    let img = busybox_image(&env);
    env.berth(&[
        "run",
        "--name",
        "echoed",
        img,
        "sh",
        "-c",
        "touch /made; rm /etc/group",
    ])
    .ok();
    // diff: the container's own changes, not /run/.containerenv, /etc/hosts …
    let d = env.berth(&["diff", "echoed"]);
    let lines: Vec<&str> = d.ok().lines().collect();
    assert_eq!(lines, ["C /etc", "D /etc/group", "A /made"], "{}", d.stdout);
    let r = env.berth(&["rm", "echoed"]);
    assert_eq!(r.ok(), "echoed\n");
}
