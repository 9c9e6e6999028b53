//! The builder: stages in order (only those the target needs), each a
//! state (config, layers, cache key, ARGs) that instructions advance.

use super::cache::{Cache, Entry};
use super::context::{content_hash, Context, StatCache};
use super::layer::{self, Owner};
use super::parse::{Args, Containerfile, Instruction};
use super::words;
use super::{BuildError, BuildOptions, PullPolicy};
use crate::engine::Engine;
use crate::image::layer_stack::{self, LayerRef};
use crate::image::manifest::{chain_ids, ContainerConfig, History, ImageConfig, RootFs};
use crate::image::reference::Reference;
use crate::image::store::{ImageRecord, StoreError};
use crate::util::digest::Digest;
use sha2::{Digest as _, Sha256};
use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

/// Build args every build knows without an ARG (docker's proxy args);
/// they reach RUN steps but not the cache key or the history.
const PROXY_ARGS: [&str; 10] = [
    "HTTP_PROXY",
    "http_proxy",
    "HTTPS_PROXY",
    "https_proxy",
    "FTP_PROXY",
    "ftp_proxy",
    "NO_PROXY",
    "no_proxy",
    "ALL_PROXY",
    "all_proxy",
];

const DEFAULT_SHELL: [&str; 2] = ["/bin/sh", "-c"];

/// One stage's instructions.
struct StageDef {
    base: Instruction,
    name: Option<String>,
    body: Vec<Instruction>,
}

/// What a COPY or ADD from the context puts in its layer, read only when
/// the step is not cached.
enum Copied {
    /// Context files.
    Items(Vec<super::context::Item>),
    /// A heredoc's text as one file.
    File { name: String, content: String },
    /// A local archive ADD unpacks.
    Archive(PathBuf, ArchiveKind),
    /// A tar already written (ADD's downloads).
    Tar(PathBuf),
}

/// A stage's state as its instructions advance it.
#[derive(Clone)]
struct State {
    config: ImageConfig,
    layers: Vec<LayerRef>,
    key: Digest,
    /// ARGs declared in this stage, with their values.
    args: BTreeMap<String, Option<String>>,
    /// CMD was set in this stage (ENTRYPOINT then keeps it).
    cmd_set: bool,
    /// How many of `layers` the base (FROM) brought; `--squash` merges
    /// the rest.
    base_layers: usize,
    /// WORKDIR changed since the last RUN: the next RUN makes the
    /// directory first, owned by its USER (buildah makes it then too).
    workdir_pending: bool,
}

impl State {
    fn cfg(&mut self) -> &mut ContainerConfig {
        self.config.config.get_or_insert_with(Default::default)
    }

    fn env_value(&self, name: &str) -> Option<String> {
        self.config
            .config
            .as_ref()
            .and_then(|c| c.env.as_ref())
            .and_then(|e| {
                e.iter().rev().find_map(|kv| {
                    kv.split_once('=')
                        .filter(|(k, _)| *k == name)
                        .map(|(_, v)| v.to_string())
                })
            })
    }

    /// A variable as instructions see it: ENV first, then ARG.
    fn var(&self, name: &str) -> Option<String> {
        self.env_value(name)
            .or_else(|| self.args.get(name).cloned().flatten())
    }

    fn shell(&self) -> Vec<String> {
        self.config
            .config
            .as_ref()
            .and_then(|c| c.shell.clone())
            .unwrap_or_else(|| DEFAULT_SHELL.iter().map(|s| s.to_string()).collect())
    }

    fn parent_chain(&self) -> Option<Digest> {
        let diffs: Vec<Digest> = self.layers.iter().map(|l| l.diff_id.clone()).collect();
        chain_ids(&diffs).last().cloned()
    }

    fn lowers(&self, engine: &Engine) -> Vec<PathBuf> {
        let diffs: Vec<Digest> = self.layers.iter().map(|l| l.diff_id.clone()).collect();
        chain_ids(&diffs)
            .iter()
            .rev()
            .map(|c| engine.store.layer_diff(c))
            .collect()
    }
}

pub(super) struct Builder<'a> {
    engine: &'a Engine,
    opts: &'a BuildOptions,
    out: &'a mut dyn Write,
    file: Containerfile,
    stages: Vec<StageDef>,
    /// Global ARGs (before the first FROM).
    globals: BTreeMap<String, Option<String>>,
    context: Context,
    cache: Cache,
    stats: StatCache,
    done: BTreeMap<usize, State>,
    used_args: BTreeSet<String>,
    step: usize,
    total: usize,
    /// The live terminal view (None: plain lines, or quiet).
    view: Option<super::view::LiveView>,
    /// The number of the step before each stage's first: a stage's steps
    /// keep their numbers whichever order stages build in.
    first_step: BTreeMap<usize, usize>,
    /// Base images found or pulled by this build, by name: each is pulled
    /// once, even with `--pull=always`.
    bases: BTreeMap<String, ImageRecord>,
    /// Replaying a stage a parallel job built: print nothing.
    mute: bool,
}

fn key_of(parts: &[&str]) -> Digest {
    let mut h = Sha256::new();
    for p in parts {
        h.update(p.as_bytes());
        h.update([0]);
    }
    Digest::from_hasher(h)
}

fn now(opts: &BuildOptions) -> String {
    match opts.timestamp {
        Some(t) => chrono::DateTime::from_timestamp(t, 0)
            .unwrap_or_default()
            .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        None => chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true),
    }
}

/// The host's platform as build args name it.
fn platform_args() -> Vec<(&'static str, String)> {
    let arch = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    };
    vec![
        ("TARGETPLATFORM", format!("linux/{arch}")),
        ("TARGETOS", "linux".into()),
        ("TARGETARCH", arch.into()),
        ("TARGETVARIANT", String::new()),
        ("BUILDPLATFORM", format!("linux/{arch}")),
        ("BUILDOS", "linux".into()),
        ("BUILDARCH", arch.into()),
    ]
}

impl<'a> Builder<'a> {
    pub(super) fn new(
        engine: &'a Engine,
        opts: &'a BuildOptions,
        out: &'a mut dyn Write,
    ) -> Result<Builder<'a>, BuildError> {
        let (text, name) = &opts.containerfile;
        let file = super::parse::parse(text, name)?;
        let mut globals = BTreeMap::new();
        // Build args that a global ARG takes count as used (FROM $BASE).
        let mut used_args = BTreeSet::new();
        for (k, v) in platform_args() {
            globals.insert(k.to_string(), Some(v));
        }
        let mut stages: Vec<StageDef> = Vec::new();
        for ins in &file.instructions {
            if ins.keyword == "FROM" {
                let text = match &ins.args {
                    Args::Shell(s) => s.clone(),
                    Args::Exec(v) => v.join(" "),
                };
                let w: Vec<&str> = text.split_whitespace().collect();
                let name = match w.as_slice() {
                    [_] => None,
                    [_, as_, n] if as_.eq_ignore_ascii_case("as") => Some(n.to_ascii_lowercase()),
                    _ => {
                        return Err(BuildError::Instruction {
                            file: name.clone(),
                            line: ins.line,
                            problem: "FROM takes IMAGE [AS NAME]".into(),
                        })
                    }
                };
                stages.push(StageDef {
                    base: ins.clone(),
                    name,
                    body: Vec::new(),
                });
            } else if let Some(s) = stages.last_mut() {
                s.body.push(ins.clone());
            } else if ins.keyword == "ARG" {
                for (k, v) in arg_decls(ins, &|n| globals.get(n).cloned().flatten(), file.escape)
                    .map_err(|p| instr_err(name, ins, p))?
                {
                    if opts.build_args.contains_key(&k) {
                        used_args.insert(k.clone());
                    }
                    let v = opts.build_args.get(&k).cloned().or(v);
                    globals.insert(k, v);
                }
            } else {
                return Err(instr_err(
                    name,
                    ins,
                    format!(
                        "{} before the first FROM: only ARG may come first",
                        ins.keyword
                    ),
                ));
            }
        }
        let ignore = match &opts.ignore {
            Some((t, n)) => super::ignore::Ignore::parse(t, n)?,
            None => Default::default(),
        };
        let cache = Cache::new(engine.store.root());
        let stats = StatCache::load(&cache.stat_cache_path());
        Ok(Builder {
            engine,
            opts,
            out,
            file,
            stages,
            globals,
            context: Context {
                root: opts.context.clone(),
                ignore,
            },
            cache,
            stats,
            done: BTreeMap::new(),
            used_args,
            step: 0,
            total: 0,
            view: (opts.live && !opts.quiet).then(super::view::LiveView::new),
            first_step: BTreeMap::new(),
            bases: BTreeMap::new(),
            mute: false,
        })
    }

    fn say(&mut self, line: &str) {
        if self.mute {
            return;
        }
        if let Some(v) = self.view.as_mut() {
            v.line(line);
        } else if !self.opts.quiet {
            let _ = writeln!(self.out, "{line}");
            let _ = self.out.flush();
        }
    }

    /// A step begins: podman's `STEP n/m: TEXT` line, or a live one.
    fn say_step(&mut self, prefix: &str, text: &str) {
        if self.mute {
            return;
        }
        match self.view.as_mut() {
            Some(v) => v.begin(format!("[{}/{}] {text}", self.step, self.total)),
            None => {
                let line = format!("{prefix}STEP {}/{}: {text}", self.step, self.total);
                self.say(&line)
            }
        }
    }

    fn stage_index(&self, name: &str) -> Option<usize> {
        let lower = name.to_ascii_lowercase();
        self.stages
            .iter()
            .position(|s| s.name.as_deref() == Some(lower.as_str()))
            .or_else(|| {
                name.parse::<usize>()
                    .ok()
                    .filter(|i| *i < self.stages.len())
            })
    }

    /// The stages a stage needs (its FROM and COPY --from), itself last.
    fn needed(&self, target: usize) -> Vec<usize> {
        let mut order = Vec::new();
        let mut seen = BTreeSet::new();
        self.visit(target, &mut seen, &mut order);
        order
    }

    fn visit(&self, i: usize, seen: &mut BTreeSet<usize>, order: &mut Vec<usize>) {
        if !seen.insert(i) {
            return;
        }
        for j in self.deps(i) {
            self.visit(j, seen, order);
        }
        order.push(i);
    }

    /// The earlier stages stage `i` reads: its FROM, COPY --from and RUN
    /// --mount from=.
    fn deps(&self, i: usize) -> Vec<usize> {
        self.sources(i)
            .iter()
            .filter_map(|d| self.stage_index(d).filter(|j| *j < i))
            .collect()
    }

    /// What stage `i` reads, as written: stage names, images, contexts.
    fn sources(&self, i: usize) -> Vec<String> {
        let s = &self.stages[i];
        let base = self.raw_base(s);
        let mut deps: Vec<String> = vec![base];
        for ins in &s.body {
            if let Some(f) = ins.flag("from") {
                deps.push(f.to_string());
            }
            // RUN --mount=...,from=STAGE
            for m in ins.flag_all("mount") {
                let from = m.split(',').find_map(|f| f.trim().strip_prefix("from="));
                deps.extend(from.map(String::from));
            }
        }
        deps
    }

    /// Pulls, in this process, the images stage `i` reads, so that
    /// parallel jobs never pull the same image at once.
    fn prepare(&mut self, i: usize) -> Result<(), BuildError> {
        for name in self.sources(i) {
            let name = match self.opts.named_contexts.get(&name) {
                Some(super::NamedContext::Image(image)) => image.clone(),
                Some(super::NamedContext::Dir(_)) => continue,
                None => name,
            };
            let stage = self.stage_index(&name).is_some_and(|j| j < i);
            if !stage && name != "scratch" && !name.contains('$') {
                self.base_image(&name)?;
            }
        }
        Ok(())
    }

    /// Builds the stages in `order` (each after those it reads): one after
    /// another, or, with `--jobs` above 1 and the cache in use, those that
    /// do not read each other at once in parallel jobs.
    fn build_stages(&mut self, order: &[usize]) -> Result<(), BuildError> {
        let jobs = match self.opts.jobs {
            0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
            n => n,
        };
        let parallel = jobs > 1 && !self.opts.no_layers;
        let mut pending: Vec<usize> = order.to_vec();
        let mut running: Vec<super::jobs::Job> = Vec::new();
        let mut failed: Option<BuildError> = None;
        // Jobs' output, shown in the stages' order as each one's turn comes.
        let mut held: BTreeMap<usize, String> = BTreeMap::new();
        let mut shown = 0;
        while !pending.is_empty() || !running.is_empty() {
            let ready: Vec<usize> = if failed.is_some() {
                Vec::new()
            } else {
                pending
                    .iter()
                    .copied()
                    .filter(|i| self.deps(*i).iter().all(|d| self.done.contains_key(d)))
                    .collect()
            };
            let alone = running.is_empty() && ready.len() <= 1;
            if !parallel || alone || !super::jobs::single_threaded() {
                let Some(&i) = ready.first() else { break };
                pending.retain(|p| *p != i);
                let st = self.run_stage(i)?;
                self.done.insert(i, st);
                shown = shown.max(order.iter().position(|s| *s == i).unwrap_or(0) + 1);
                continue;
            }
            for i in ready.into_iter().take(jobs.saturating_sub(running.len())) {
                pending.retain(|p| *p != i);
                self.prepare(i)?;
                let dir = self.engine.store.temp_path("build-job")?;
                let job = super::jobs::spawn(dir, i, |dir| self.job(i, dir))?;
                running.push(job);
            }
            let job = super::jobs::wait_any(&mut running)?;
            held.insert(job.stage, job.log());
            while let Some(log) = order.get(shown).and_then(|s| held.remove(s)) {
                shown += 1;
                self.show_log(&log);
            }
            if let Some(e) = job.failure() {
                // Let the others finish: killing one mid-step would leave
                // its container behind.
                failed.get_or_insert(e);
                continue;
            }
            self.stats.merge(StatCache::load(&job.stats_path()));
            if let Some(v) = self.view.as_mut() {
                v.end();
            }
            // Every step is now a cache hit: this only rebuilds the state.
            self.mute = true;
            let st = self.run_stage(job.stage);
            self.mute = false;
            self.done.insert(job.stage, st?);
        }
        for log in std::mem::take(&mut held).values() {
            self.show_log(log);
        }
        match failed {
            Some(e) => Err(e),
            None if !pending.is_empty() => Err(BuildError::Usage(
                "the stages' order could not be worked out".into(),
            )),
            None => Ok(()),
        }
    }

    /// Shows a job's output: its plain lines, or on a terminal what its
    /// own live view drew, byte for byte.
    fn show_log(&mut self, log: &str) {
        if self.mute {
            return;
        }
        if let Some(v) = self.view.as_mut() {
            v.end();
            let mut term = std::io::stdout();
            let _ = term.write_all(log.as_bytes());
            let _ = term.flush();
            return;
        }
        for line in log.lines() {
            self.say(line);
        }
    }

    /// A parallel job's work, in the forked child: build stage `i`, its
    /// output to its log (the parent shows it), and keep what the stat cache
    /// learned in `dir`.
    fn job(&mut self, i: usize, dir: &Path) -> Result<(), BuildError> {
        let log: &'a mut dyn Write = Box::leak(Box::new(std::io::stdout()));
        self.out = log;
        if self.view.is_some() {
            self.view = Some(super::view::LiveView::new());
        }
        let result = self.run_stage(i).map(|_| ());
        // The child _exits, dropping nothing: end its view's last step
        // here (dropping the view marks a failed one).
        match (&result, self.view.as_mut()) {
            (Ok(()), Some(v)) => v.end(),
            _ => drop(self.view.take()),
        }
        let _ = self.out.flush();
        self.stats.save(&super::jobs::stats_path(dir));
        result
    }

    fn raw_base(&self, s: &StageDef) -> String {
        let text = match &s.base.args {
            Args::Shell(t) => t.clone(),
            Args::Exec(v) => v.join(" "),
        };
        let first = text.split_whitespace().next().unwrap_or("").to_string();
        let g = |n: &str| self.globals.get(n).cloned().flatten();
        words::expand(&first, &g, self.file.escape).unwrap_or(first)
    }

    pub(super) fn run(mut self) -> Result<ImageRecord, BuildError> {
        let target = match &self.opts.target {
            Some(t) => self.stage_index(t).ok_or_else(|| {
                BuildError::Usage(format!("--target {t}: no stage has that name"))
            })?,
            None => self.stages.len() - 1,
        };
        let order = self.needed(target);
        for i in &order {
            self.first_step.insert(*i, self.total);
            self.total += 1 + self.stages[*i].body.len();
        }
        self.build_stages(&order)?;
        let mut st = self.done.remove(&target).expect("built");
        // --label on the final image only.
        for l in &self.opts.labels {
            let (k, v) = l.split_once('=').unwrap_or((l, ""));
            st.cfg()
                .labels
                .get_or_insert_with(Default::default)
                .insert(k.to_string(), v.to_string());
        }
        let unused: Vec<&String> = self
            .opts
            .build_args
            .keys()
            .filter(|k| !self.used_args.contains(*k) && !PROXY_ARGS.contains(&k.as_str()))
            .collect();
        if !unused.is_empty() && !self.opts.quiet {
            let list: Vec<&str> = unused.iter().map(|s| s.as_str()).collect();
            let _ = writeln!(
                self.out,
                "[Warning] one or more build args were not consumed: [{}]",
                list.join(" ")
            );
        }
        self.stats.save(&self.cache.stat_cache_path());
        let names: Vec<Reference> = self
            .opts
            .tags
            .iter()
            .map(|t| Reference::local(t))
            .collect::<Result<_, _>>()?;
        if self.opts.squash_all && st.layers.len() > 1 {
            st = self.squash_all(st)?;
        } else if self.opts.squash && st.layers.len() > st.base_layers + 1 {
            st = self.squash_new(st)?;
        }
        st.config.created = st.config.history.last().and_then(|h| h.created.clone());
        if !self.opts.docker_format {
            // OCI configs have no place for these; podman drops them too.
            if let Some(c) = st.config.config.as_mut() {
                c.shell = None;
            }
        }
        let label = names
            .first()
            .map(|n| n.to_string())
            .unwrap_or_else(|| "".into());
        self.say(&format!("COMMIT {label}"));
        let annotations: std::collections::BTreeMap<String, String> = self
            .opts
            .annotations
            .iter()
            .map(|a| {
                let (k, v) = a.split_once('=').unwrap_or((a, ""));
                (k.to_string(), v.to_string())
            })
            .collect();
        let annotations = (!annotations.is_empty()).then_some(annotations);
        let img = layer_stack::record(
            &self.engine.store,
            &st.config,
            &st.layers,
            &names,
            annotations,
        )?;
        self.say(&format!("--> {}", &img.id.hex()[..12]));
        for n in &names {
            self.say(&format!("Successfully tagged {n}"));
        }
        Ok(img)
    }

    /// `--squash-all`: the image's whole tree as its one layer; the
    /// history keeps its entries, all but a last one marked empty.
    fn squash_all(&mut self, mut st: State) -> Result<State, BuildError> {
        self.say("--> squashing every layer into one");
        let tmp = self.engine.store.temp_path("build-squash")?;
        let out = tmp.path().to_path_buf();
        let lowers = st.lowers(self.engine);
        let work = layer::Work::new(self.engine)?;
        layer::in_mounted_root(self.engine, &lowers, &work, |root| {
            let f = std::fs::File::create(&out).map_err(|e| e.to_string())?;
            // The root fd may be O_PATH: reopened to be read.
            let dir = crate::util::fdtree::open_dir_at(root.as_raw_fd(), b".")
                .map_err(|e| e.to_string())?;
            crate::util::fdtree::tar_contents(
                dir.as_raw_fd(),
                std::io::BufWriter::new(f),
                &Default::default(),
            )
            .and_then(|w| w.into_inner().map_err(|e| e.into_error()))
            .map_err(|e| e.to_string())?;
            Ok(())
        })?;
        drop(work);
        let f = std::fs::File::open(&out).map_err(BuildError::io("reading the squashed layer"))?;
        let layer = layer_stack::store_layer(&self.engine.store, std::io::BufReader::new(f), None)?;
        for h in st.config.history.iter_mut() {
            h.empty_layer = Some(true);
        }
        st.config.history.push(History {
            created: Some(now(self.opts)),
            created_by: Some("/bin/sh -c #(nop) squashed".into()),
            ..Default::default()
        });
        st.config.rootfs.diff_ids = vec![layer.diff_id.clone()];
        st.layers = vec![layer];
        Ok(st)
    }

    /// The layer that makes whichever of the directories `paths` (and
    /// their parents) the image lacks, owned by `ids`; false (no layer)
    /// when it has them all.
    fn dirs_layer(
        &mut self,
        st: &mut State,
        canonical: &str,
        paths: &[String],
        ids: (u32, u32),
    ) -> Result<bool, BuildError> {
        let lowers = st.lowers(self.engine);
        let exists = |rel: &str| crate::image::diff::in_lowers(&lowers, Path::new(rel));
        let mut dirs: Vec<String> = Vec::new();
        for v in paths {
            let mut acc = String::new();
            for c in v.split('/').filter(|c| !c.is_empty() && *c != ".") {
                acc = if acc.is_empty() {
                    c.to_string()
                } else {
                    format!("{acc}/{c}")
                };
                if !exists(&acc) && !dirs.contains(&acc) {
                    dirs.push(acc.clone());
                }
            }
        }
        if dirs.is_empty() {
            return Ok(false);
        }
        let tmp = self.engine.store.temp_path("build-dirs")?;
        let path = tmp.path().to_path_buf();
        let now = self
            .opts
            .timestamp
            .unwrap_or_else(|| chrono::Utc::now().timestamp());
        layer::dirs_tar(&dirs, ids, now, &path).map_err(BuildError::io("writing the layer"))?;
        let extra = format!("{ids:?}");
        self.layer_step(st, canonical, &extra, &mut |b, st| {
            layer::layer_from(
                b.engine,
                &st.lowers(b.engine),
                st.parent_chain().as_ref(),
                "/",
                layer::Source::Tar(&path),
                b.opts.timestamp,
                ids,
            )
        })?;
        drop(tmp);
        Ok(true)
    }

    /// `--squash`: the layers the build made as one, over the base's. The
    /// new layers' directories are applied in order onto the base mounted
    /// as an overlay, whose upper dir then holds their combined change
    /// (deletions of base files as whiteouts).
    fn squash_new(&mut self, mut st: State) -> Result<State, BuildError> {
        self.say("--> squashing the new layers into one");
        let base = State {
            layers: st.layers[..st.base_layers].to_vec(),
            ..st.clone()
        };
        let new_dirs: Vec<PathBuf> = st.lowers(self.engine)[..st.layers.len() - st.base_layers]
            .iter()
            .rev()
            .cloned()
            .collect();
        let work = layer::Work::new(self.engine)?;
        layer::in_mounted_root(self.engine, &base.lowers(self.engine), &work, |root| {
            for d in &new_dirs {
                let from = std::fs::File::open(d).map_err(|e| e.to_string())?;
                crate::image::apply::apply_layer(from.as_raw_fd(), root.as_raw_fd())
                    .map_err(|e| format!("merging {}: {e}", d.display()))?;
            }
            Ok(())
        })?;
        let layer = layer::upper_as_layer(
            self.engine,
            &work.dir("upper"),
            &Default::default(),
            base.parent_chain().as_ref(),
            self.opts.timestamp,
        )?;
        drop(work);
        let mut seen = 0;
        for h in st.config.history.iter_mut() {
            if h.empty_layer != Some(true) {
                seen += 1;
                if seen > st.base_layers {
                    h.empty_layer = Some(true);
                }
            }
        }
        st.config.history.push(History {
            created: Some(now(self.opts)),
            created_by: Some("/bin/sh -c #(nop) squashed".into()),
            ..Default::default()
        });
        st.layers.truncate(st.base_layers);
        st.layers.push(layer);
        st.config.rootfs.diff_ids = st.layers.iter().map(|l| l.diff_id.clone()).collect();
        Ok(st)
    }

    fn base_state(&mut self, def_index: usize) -> Result<State, BuildError> {
        let def = &self.stages[def_index];
        let base = self.raw_base(def);
        let ins = def.base.clone();
        let file = &self.opts.containerfile.1;
        if let Some(p) = ins.flag("platform") {
            let host = platform_args()[0].1.clone();
            let g = |n: &str| self.globals.get(n).cloned().flatten();
            let p = words::expand(p, &g, self.file.escape).unwrap_or(p.to_string());
            if p != host && p != "linux" {
                return Err(instr_err(
                    file,
                    &ins,
                    format!("FROM --platform={p}: this host builds {host} only; running another architecture's programs needs binfmt emulation, which berth does not set up"),
                ));
            }
        }
        let base = match self.opts.named_contexts.get(&base) {
            Some(super::NamedContext::Image(i)) => i.clone(),
            Some(super::NamedContext::Dir(_)) => {
                return Err(instr_err(
                    file,
                    &ins,
                    format!("FROM {base}: a directory build context is no base image; give an image with --build-context {base}=docker-image://IMAGE"),
                ))
            }
            None => base,
        };
        if base == "scratch" {
            let arch = platform_args()[2].1.clone();
            return Ok(State {
                config: ImageConfig {
                    architecture: arch,
                    os: "linux".into(),
                    config: Some(ContainerConfig {
                        env: Some(vec![crate::engine::spec::DEFAULT_PATH.to_string()]),
                        ..Default::default()
                    }),
                    rootfs: RootFs {
                        kind: "layers".into(),
                        diff_ids: Vec::new(),
                    },
                    ..Default::default()
                },
                layers: Vec::new(),
                key: key_of(&["FROM scratch"]),
                args: BTreeMap::new(),
                cmd_set: false,
                base_layers: 0,
                workdir_pending: false,
            });
        }
        if let Some(j) = self.stage_index(&base).filter(|j| *j < def_index) {
            let mut st = self
                .done
                .get(&j)
                .cloned()
                .ok_or_else(|| BuildError::Usage(format!("stage {base} was not built")))?;
            st.args.clear();
            st.cmd_set = false;
            st.base_layers = st.layers.len();
            st.workdir_pending = false;
            return Ok(st);
        }
        let image = self.base_image(&base)?;
        let layers = layer_stack::layers_of(&self.engine.store, &image);
        let mut config = image.config.clone();
        // As docker and buildah: a base without PATH gets the default one.
        let env = config
            .config
            .get_or_insert_with(Default::default)
            .env
            .get_or_insert_with(Vec::new);
        if !env.iter().any(|e| e.starts_with("PATH=")) {
            env.insert(0, crate::engine::spec::DEFAULT_PATH.to_string());
        }
        Ok(State {
            key: key_of(&["FROM", image.id.hex()]),
            config,
            base_layers: layers.len(),
            layers,
            args: BTreeMap::new(),
            cmd_set: false,
            workdir_pending: false,
        })
    }

    fn base_image(&mut self, name: &str) -> Result<ImageRecord, BuildError> {
        if let Some(i) = self.bases.get(name) {
            return Ok(i.clone());
        }
        let image = self.find_or_pull(name)?;
        self.bases.insert(name.to_string(), image.clone());
        Ok(image)
    }

    fn find_or_pull(&self, name: &str) -> Result<ImageRecord, BuildError> {
        let store = &self.engine.store;
        let found = if self.opts.pull == PullPolicy::Always {
            Err(StoreError::NotKnown(name.to_string()))
        } else {
            store.find(name)
        };
        match found {
            Ok(i) => Ok(i),
            Err(StoreError::NotKnown(_)) if self.opts.pull != PullPolicy::Never => {
                let progress: Box<dyn crate::image::progress::Progress> =
                    Box::new(crate::image::progress::Silent);
                Ok(crate::image::pull::pull(
                    store,
                    &self.engine.conf,
                    name,
                    &self.opts.pull_options,
                    progress.as_ref(),
                )?
                .image)
            }
            Err(e) => Err(e.into()),
        }
    }

    fn run_stage(&mut self, i: usize) -> Result<State, BuildError> {
        let def_base = self.stages[i].base.clone();
        self.step = self.first_step.get(&i).copied().unwrap_or(self.step) + 1;
        let prefix = if self.stages.len() > 1 {
            format!("[{}/{}] ", i + 1, self.stages.len())
        } else {
            String::new()
        };
        self.say_step(&prefix, &def_base.text);
        let mut st = self.base_state(i)?;
        // ONBUILD triggers of the base run first.
        let triggers = st.cfg().on_build.take().unwrap_or_default();
        if !triggers.is_empty() {
            let text = format!("FROM scratch\n{}\n", triggers.join("\n"));
            let parsed = super::parse::parse(&text, "ONBUILD")?;
            for ins in parsed.instructions.into_iter().skip(1) {
                self.instruction(&mut st, &ins)?;
            }
        }
        let body = self.stages[i].body.clone();
        for ins in &body {
            self.step += 1;
            self.say_step("", &ins.text);
            self.instruction(&mut st, ins)?;
        }
        Ok(st)
    }

    fn lookup<'s>(&'s self, st: &'s State) -> impl Fn(&str) -> Option<String> + 's {
        move |n: &str| st.var(n)
    }

    fn expand_words(
        &self,
        st: &State,
        ins: &Instruction,
        s: &str,
    ) -> Result<Vec<String>, BuildError> {
        let f = self.lookup(st);
        words::words(s, &f, self.file.escape).map_err(|e| self.err(ins, e.to_string()))
    }

    fn expand_one(&self, st: &State, ins: &Instruction, s: &str) -> Result<String, BuildError> {
        let f = self.lookup(st);
        words::expand(s, &f, self.file.escape).map_err(|e| self.err(ins, e.to_string()))
    }

    fn err(&self, ins: &Instruction, problem: String) -> BuildError {
        instr_err(&self.opts.containerfile.1, ins, problem)
    }

    fn shell_text(ins: &Instruction) -> String {
        match &ins.args {
            Args::Shell(s) => s.clone(),
            Args::Exec(v) => v.join(" "),
        }
    }

    /// A config-only step: its cache entry keeps its time stable.
    fn config_step(&mut self, st: &mut State, canonical: &str) {
        st.key = key_of(&[st.key.hex(), canonical]);
        let created = self
            .cached(&st.key, None)
            .map(|e| e.created)
            .unwrap_or_else(|| {
                let c = now(self.opts);
                self.remember(&st.key, None, &c);
                c
            });
        st.config.history.push(History {
            created: Some(created),
            created_by: Some(format!("/bin/sh -c #(nop) {canonical}")),
            empty_layer: Some(true),
            ..Default::default()
        });
    }

    fn use_cache(&self) -> bool {
        !self.opts.no_cache && !self.opts.no_layers
    }

    /// The cache entry for `key`, when its layer (on `parent`) is still there.
    fn cached(&self, key: &Digest, parent: Option<&Digest>) -> Option<Entry> {
        // A replay reads what its job just wrote, --no-cache or not.
        let replay = self.mute && !self.opts.no_layers;
        if !self.use_cache() && !replay {
            return None;
        }
        let e = self.cache.get(key)?;
        match &e.layer {
            Some(l) if !layer_stack::present(&self.engine.store, parent, l) => None,
            _ => Some(e),
        }
    }

    fn remember(&self, key: &Digest, layer: Option<&LayerRef>, created: &str) {
        if !self.opts.no_layers {
            self.cache.put(
                key,
                &Entry {
                    layer: layer.cloned(),
                    created: created.to_string(),
                },
            );
        }
    }

    /// A step that makes a layer: from the cache when its key is there,
    /// else by `make`.
    fn layer_step(
        &mut self,
        st: &mut State,
        canonical: &str,
        extra: &str,
        make: &mut dyn FnMut(&mut Self, &State) -> Result<LayerRef, BuildError>,
    ) -> Result<(), BuildError> {
        let key = key_of(&[st.key.hex(), canonical, extra]);
        let parent = st.parent_chain();
        let (layer, created) = match self.cached(&key, parent.as_ref()) {
            Some(e) => {
                match self.view.as_mut() {
                    Some(v) => v.cached(),
                    None => self.say(&format!("--> Using cache {}", key.hex())),
                }
                (e.layer, e.created)
            }
            None => {
                let l = make(self, st)?;
                let c = now(self.opts);
                self.remember(&key, Some(&l), &c);
                (Some(l), c)
            }
        };
        if let Some(l) = layer {
            st.config.rootfs.diff_ids.push(l.diff_id.clone());
            st.layers.push(l);
        }
        st.config.history.push(History {
            created: Some(created),
            created_by: Some(canonical.to_string()),
            ..Default::default()
        });
        st.key = key;
        Ok(())
    }

    fn instruction(&mut self, st: &mut State, ins: &Instruction) -> Result<(), BuildError> {
        match ins.keyword.as_str() {
            "ARG" => {
                let decls = {
                    let f = self.lookup(st);
                    let globals = &self.globals;
                    let lookup = |n: &str| f(n).or_else(|| globals.get(n).cloned().flatten());
                    arg_decls(ins, &lookup, self.file.escape).map_err(|p| self.err(ins, p))?
                };
                let mut canon = Vec::new();
                for (k, default) in decls {
                    let v = self
                        .opts
                        .build_args
                        .get(&k)
                        .cloned()
                        .or(default)
                        .or_else(|| self.globals.get(&k).cloned().flatten());
                    self.used_args.insert(k.clone());
                    canon.push(format!("{k}={}", v.clone().unwrap_or_default()));
                    st.args.insert(k, v);
                }
                // An ARG changes what later steps see: it is in the key,
                // not in the image.
                st.key = key_of(&[st.key.hex(), &format!("ARG {}", canon.join(" "))]);
                Ok(())
            }
            "ENV" => {
                let pairs = self.pairs(st, ins)?;
                let env = st.cfg().env.get_or_insert_with(Vec::new);
                for (k, v) in &pairs {
                    // Replaced where it is, as docker and buildah do.
                    let kv = format!("{k}={v}");
                    match env
                        .iter()
                        .position(|e| e.split_once('=').map(|x| x.0) == Some(k.as_str()))
                    {
                        Some(i) => env[i] = kv,
                        None => env.push(kv),
                    }
                }
                let canon = pairs
                    .iter()
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect::<Vec<_>>()
                    .join(" ");
                self.config_step(st, &format!("ENV {canon}"));
                Ok(())
            }
            "LABEL" => {
                let pairs = self.pairs(st, ins)?;
                let labels = st.cfg().labels.get_or_insert_with(Default::default);
                for (k, v) in &pairs {
                    labels.insert(k.clone(), v.clone());
                }
                let canon = pairs
                    .iter()
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect::<Vec<_>>()
                    .join(" ");
                self.config_step(st, &format!("LABEL {canon}"));
                Ok(())
            }
            "MAINTAINER" => {
                let who = Self::shell_text(ins);
                st.config.author = Some(who.clone());
                self.config_step(st, &format!("MAINTAINER {who}"));
                Ok(())
            }
            "EXPOSE" => {
                let ports = self.expand_words(st, ins, &Self::shell_text(ins))?;
                let mut canon = Vec::new();
                for p in ports {
                    let p = if p.contains('/') {
                        p.to_ascii_lowercase()
                    } else {
                        format!("{p}/tcp")
                    };
                    let (num, proto) = p.split_once('/').unwrap_or((&p, "tcp"));
                    if num.split('-').any(|n| n.parse::<u16>().is_err())
                        || !matches!(proto, "tcp" | "udp" | "sctp")
                    {
                        return Err(
                            self.err(ins, format!("invalid port {p:?}: use PORT[/tcp|udp|sctp]"))
                        );
                    }
                    st.cfg()
                        .exposed_ports
                        .get_or_insert_with(Default::default)
                        .insert(p.clone(), serde_json::json!({}));
                    canon.push(p);
                }
                self.config_step(st, &format!("EXPOSE {}", canon.join(" ")));
                Ok(())
            }
            "VOLUME" => {
                let vols = match &ins.args {
                    Args::Exec(v) => v.clone(),
                    Args::Shell(s) => self.expand_words(st, ins, s)?,
                };
                for v in &vols {
                    st.cfg()
                        .volumes
                        .get_or_insert_with(Default::default)
                        .insert(v.clone(), serde_json::json!({}));
                }
                // The directories are made in the image too, as buildah
                // does, when the image lacks them.
                let canonical = format!("/bin/sh -c #(nop) VOLUME {vols:?}");
                if !self.dirs_layer(st, &canonical, &vols, (0, 0))? {
                    self.config_step(st, &format!("VOLUME {vols:?}"));
                }
                Ok(())
            }
            "USER" => {
                let u = self.expand_one(st, ins, Self::shell_text(ins).trim())?;
                st.cfg().user = Some(u.clone());
                self.config_step(st, &format!("USER {u}"));
                Ok(())
            }
            "WORKDIR" => {
                let w = self.expand_one(st, ins, Self::shell_text(ins).trim())?;
                let cur = st.cfg().working_dir.clone().unwrap_or_else(|| "/".into());
                let joined = if w.starts_with('/') {
                    w
                } else {
                    format!("{}/{w}", cur.trim_end_matches('/'))
                };
                let clean = clean_abs(&joined);
                st.cfg().working_dir = Some(clean.clone());
                st.workdir_pending = true;
                self.config_step(st, &format!("WORKDIR {clean}"));
                Ok(())
            }
            "STOPSIGNAL" => {
                let s = self.expand_one(st, ins, Self::shell_text(ins).trim())?;
                st.cfg().stop_signal = Some(s.clone());
                self.config_step(st, &format!("STOPSIGNAL {s}"));
                Ok(())
            }
            "SHELL" => {
                let Args::Exec(v) = &ins.args else {
                    return Err(self.err(
                        ins,
                        "SHELL takes the JSON form: SHELL [\"/bin/bash\", \"-c\"]".into(),
                    ));
                };
                if v.is_empty() {
                    return Err(self.err(ins, "SHELL needs at least one argument".into()));
                }
                st.cfg().shell = Some(v.clone());
                self.config_step(st, &format!("SHELL {v:?}"));
                Ok(())
            }
            "CMD" | "ENTRYPOINT" => {
                let argv = match &ins.args {
                    Args::Exec(v) => v.clone(),
                    Args::Shell(s) if s.trim().is_empty() => Vec::new(),
                    Args::Shell(s) => {
                        let mut v = st.shell();
                        v.push(s.clone());
                        v
                    }
                };
                if ins.keyword == "CMD" {
                    st.cfg().cmd = Some(argv.clone());
                    st.cmd_set = true;
                } else {
                    st.cfg().entrypoint = Some(argv.clone());
                    if !st.cmd_set {
                        st.cfg().cmd = None;
                    }
                }
                self.config_step(st, &format!("{} {argv:?}", ins.keyword));
                Ok(())
            }
            "HEALTHCHECK" => {
                let hc = healthcheck(ins).map_err(|p| self.err(ins, p))?;
                st.cfg().healthcheck = Some(hc.clone());
                self.config_step(st, &format!("HEALTHCHECK {hc}"));
                Ok(())
            }
            "ONBUILD" => {
                let t = Self::shell_text(ins);
                let first = t
                    .split_whitespace()
                    .next()
                    .unwrap_or("")
                    .to_ascii_uppercase();
                if matches!(first.as_str(), "ONBUILD" | "FROM" | "MAINTAINER") {
                    return Err(self.err(ins, format!("ONBUILD cannot trigger {first}")));
                }
                st.cfg()
                    .on_build
                    .get_or_insert_with(Vec::new)
                    .push(t.clone());
                self.config_step(st, &format!("ONBUILD {t}"));
                Ok(())
            }
            "RUN" => self.run_step(st, ins),
            "COPY" | "ADD" => self.copy_step(st, ins),
            "FROM" => Err(self.err(ins, "FROM inside a stage".into())),
            other => Err(self.err(ins, format!("{other} is not supported"))),
        }
    }

    /// `k=v k2="v 2"` (or the legacy `k v` form) with variables expanded.
    fn pairs(&self, st: &State, ins: &Instruction) -> Result<Vec<(String, String)>, BuildError> {
        let text = Self::shell_text(ins);
        // The first word as the shell splits it: `"spaced key"=v` is a pair.
        let words = self.expand_words(st, ins, &text)?;
        if !words.first().is_some_and(|w| w.contains('=')) {
            let (k, v) = text
                .trim()
                .split_once(char::is_whitespace)
                .ok_or_else(|| self.err(ins, format!("{} needs KEY=VALUE", ins.keyword)))?;
            return Ok(vec![(k.to_string(), self.expand_one(st, ins, v.trim())?)]);
        }
        let mut out = Vec::new();
        for w in words {
            let (k, v) = w
                .split_once('=')
                .ok_or_else(|| self.err(ins, format!("{w:?} is not KEY=VALUE")))?;
            if k.is_empty() {
                return Err(self.err(ins, format!("{w:?} has no key")));
            }
            out.push((k.to_string(), v.to_string()));
        }
        Ok(out)
    }

    /// Makes the working directory WORKDIR named, when the image lacks
    /// it, owned by the USER the RUN step runs as.
    fn make_workdir(&mut self, st: &mut State, ins: &Instruction) -> Result<(), BuildError> {
        st.workdir_pending = false;
        let Some(wd) = st.cfg().working_dir.clone() else {
            return Ok(());
        };
        let user = st.cfg().user.clone().unwrap_or_default();
        let ids = if user.is_empty() {
            (0, 0)
        } else {
            let lowers = st.lowers(self.engine);
            let dirs: Vec<&Path> = lowers.iter().map(|p| p.as_path()).collect();
            let ids = crate::engine::user::resolve(&user, &dirs)
                .map_err(|e| self.err(ins, format!("USER {user}: {e}")))?;
            (ids.uid, ids.gid)
        };
        let canonical = format!("/bin/sh -c #(nop) WORKDIR {wd}");
        self.dirs_layer(st, &canonical, std::slice::from_ref(&wd), ids)?;
        Ok(())
    }

    fn run_step(&mut self, st: &mut State, ins: &Instruction) -> Result<(), BuildError> {
        if st.workdir_pending {
            self.make_workdir(st, ins)?;
        }
        let argv = match (&ins.args, ins.heredocs.first()) {
            (Args::Exec(v), _) => v.clone(),
            (Args::Shell(s), Some(h)) if s.trim().starts_with("<<") && ins.heredocs.len() == 1 => {
                let mut v = st.shell();
                v.push(h.content.clone());
                v
            }
            (Args::Shell(s), _) => {
                let mut script = s.clone();
                for h in &ins.heredocs {
                    script.push('\n');
                    script.push_str(&h.content);
                    script.push_str(&h.name);
                }
                let mut v = st.shell();
                v.push(script);
                v
            }
        };
        if argv.is_empty() {
            return Err(self.err(ins, "RUN needs a command".into()));
        }
        // ARGs reach the command as environment (ENV wins); proxies too.
        let mut env: Vec<String> = Vec::new();
        let mut arg_key = Vec::new();
        for (k, v) in &st.args {
            if let Some(v) = v {
                if st.env_value(k).is_none() {
                    env.push(format!("{k}={v}"));
                }
                arg_key.push(format!("{k}={v}"));
            }
        }
        for p in PROXY_ARGS {
            if let Some(v) = self.opts.build_args.get(p) {
                env.push(format!("{p}={v}"));
            }
        }
        let canonical = argv.join(" ");
        let c = st.config.config.clone().unwrap_or_default();
        let mounts = {
            let specs: Vec<String> = ins
                .flag_all("mount")
                .iter()
                .map(|m| self.expand_one(st, ins, m))
                .collect::<Result<_, _>>()?;
            let specs: Vec<&str> = specs.iter().map(String::as_str).collect();
            let workdir = c.working_dir.clone().unwrap_or_else(|| "/".into());
            let cache_root = self.engine.store.root().join("build-cache/mounts");
            super::run_mounts::plan(
                &specs,
                &self.context,
                &mut self.stats,
                &self.opts.secrets,
                &cache_root,
                &workdir,
            )
            .map_err(|p| self.err(ins, p))?
        };
        let mut binds = Vec::new();
        let mut mounts = mounts;
        for p in std::mem::take(&mut mounts.pending) {
            let (source, key) = self.resolve_bind(st, &p).map_err(|e| self.err(ins, e))?;
            mounts.key.push_str(&format!(
                "bind:{:?}:{}:{}:{}:{key};",
                p.from, p.source, p.target, p.rw
            ));
            binds.push((source, p));
        }
        let extra = format!(
            "{:?}|{:?}|{:?}|{:?}|{}|{}",
            c.env,
            c.user,
            c.working_dir,
            arg_key,
            self.opts.network.clone().unwrap_or_default(),
            mounts.key
        );
        let step_text = ins.text.clone();
        self.layer_step(st, &canonical, &extra, &mut |b, st| {
            let mut mounts = mounts.clone();
            let mut keep = Vec::new();
            for (source, p) in &binds {
                let host = b.materialise(source, &mut keep)?;
                let ro = if p.rw { "" } else { ":ro" };
                mounts
                    .volumes
                    .push(format!("{}:{}{ro}", host.display(), p.target));
            }
            b.run_container(st, argv.clone(), env.clone(), &mounts, &step_text)
        })
    }

    /// Where a `RUN --mount=type=bind` with `from=` or `rw` reads from,
    /// and what it adds to the step's key: a context's content hash, or
    /// the stage's key or image's id.
    fn resolve_bind(
        &mut self,
        st: &State,
        p: &super::run_mounts::PendingBind,
    ) -> Result<(BindSource, String), String> {
        let named = p
            .from
            .as_ref()
            .and_then(|f| self.opts.named_contexts.get(f));
        let dir_ctx;
        let ctx = match (&p.from, named) {
            (None, _) => Some(&self.context),
            (Some(_), Some(super::NamedContext::Dir(d))) => {
                dir_ctx = Context {
                    root: d.clone(),
                    ignore: Default::default(),
                };
                Some(&dir_ctx)
            }
            _ => None,
        };
        if let Some(ctx) = ctx {
            let items = ctx
                .select(std::slice::from_ref(&p.source), None)
                .map_err(|e| e.to_string())?;
            let hash = content_hash(&items, &mut self.stats).map_err(|e| e.to_string())?;
            let host = ctx.path_of(&p.source).ok_or_else(|| {
                format!(
                    "bind mount source {:?} is outside the build context",
                    p.source
                )
            })?;
            let source = if p.rw {
                BindSource::CopyOf(host)
            } else {
                BindSource::Host(host)
            };
            return Ok((source, hash.to_string()));
        }
        let from = match named {
            Some(super::NamedContext::Image(i)) => i.clone(),
            _ => p.from.clone().unwrap_or_default(),
        };
        let (lowers, key) = match self.stage_index(&from).and_then(|i| self.done.get(&i)) {
            Some(s) => (s.lowers(self.engine), s.key.to_string()),
            None => {
                let img = self.base_image(&from).map_err(|e| e.to_string())?;
                let mut s = st.clone();
                s.layers = layer_stack::layers_of(&self.engine.store, &img);
                (s.lowers(self.engine), img.id.to_string())
            }
        };
        Ok((
            BindSource::Root {
                lowers,
                source: p.source.clone(),
            },
            key,
        ))
    }

    /// The host path a resolved bind mount shows the step: copies go to
    /// the store's tmp (kept in `keep` until the step is done).
    fn materialise(
        &self,
        source: &BindSource,
        keep: &mut Vec<crate::image::store::TempPath>,
    ) -> Result<PathBuf, BuildError> {
        if let BindSource::Host(p) = source {
            return Ok(p.clone());
        }
        let tmp = self.engine.store.temp_path("build-bind")?;
        std::fs::create_dir(tmp.path()).map_err(BuildError::io("making a bind mount's copy"))?;
        let at = tmp.path().join("src");
        match source {
            BindSource::Host(_) => unreachable!("bound as it is, above"),
            BindSource::CopyOf(p) => {
                let copy = || -> std::io::Result<()> {
                    if p.is_dir() {
                        std::fs::create_dir(&at)?;
                        let from = std::fs::File::open(p)?;
                        let to = std::fs::File::open(&at)?;
                        crate::util::fdtree::copy_tree(from.as_raw_fd(), to.as_raw_fd())
                    } else {
                        std::fs::copy(p, &at).map(|_| ())
                    }
                };
                copy().map_err(BuildError::io(format!("copying {}", p.display())))?;
            }
            BindSource::Root { lowers, source } => {
                let tar = tmp.path().join("src.tar");
                super::from_stage::tar_from_root(
                    self.engine,
                    lowers,
                    std::slice::from_ref(source),
                    Some("src"),
                    None,
                    None,
                    &tar,
                )?;
                let mut a = tar::Archive::new(
                    std::fs::File::open(&tar).map_err(BuildError::io("reading a bind source"))?,
                );
                a.set_preserve_permissions(true);
                a.set_preserve_ownerships(true);
                a.unpack(tmp.path())
                    .map_err(BuildError::io(format!("copying out {source}")))?;
            }
        }
        keep.push(tmp);
        Ok(at)
    }

    fn run_container(
        &mut self,
        st: &State,
        argv: Vec<String>,
        env: Vec<String>,
        mounts: &super::run_mounts::RunMounts,
        step: &str,
    ) -> Result<LayerRef, BuildError> {
        let engine = self.engine;
        let record = layer_stack::working_record(&st.config, &st.layers);
        let o = crate::engine::request::RunOptions {
            image: record.id.to_string(),
            base: Some(Box::new(record)),
            entrypoint: Some(String::new()),
            command: argv,
            env,
            network: self.opts.network.clone(),
            volumes: mounts.volumes.clone(),
            tmpfs: mounts.tmpfs.clone(),
            ..Default::default()
        };
        let quiet = match self.view.as_ref() {
            Some(v) => (None, Some(v.capture())),
            None => (Some(QuietStdout::new(self.opts.quiet)), None),
        };
        let progress = crate::image::progress::Silent;
        let outcome = crate::engine::run::run(engine, o, &progress);
        drop(quiet);
        let (id, code) = match outcome? {
            crate::engine::run::RunOutcome::Exited { id, code } => (id, code),
            crate::engine::run::RunOutcome::Detached(id) => (id, 0),
        };
        let containers = crate::engine::container::Containers::new(engine.store.root());
        let cleanup = |containers: &crate::engine::container::Containers| {
            let _ = crate::engine::lifecycle::remove_forced(containers, &id);
        };
        if code != 0 {
            let tail = log_tail(&containers.log_path(&id), 5);
            cleanup(&containers);
            return Err(BuildError::Run {
                step: step.to_string(),
                code,
                tail: if tail.is_empty() {
                    String::new()
                } else {
                    format!("; its last output: {}", tail.join(" | "))
                },
            });
        }
        let dir = containers.dir(&id);
        let skip = crate::engine::lifecycle::runtime_made(&dir, &st.lowers(engine));
        let layer = layer::upper_as_layer(
            engine,
            &dir.join("upper"),
            &skip,
            st.parent_chain().as_ref(),
            self.opts.timestamp,
        );
        cleanup(&containers);
        layer
    }

    fn copy_step(&mut self, st: &mut State, ins: &Instruction) -> Result<(), BuildError> {
        let add = ins.keyword == "ADD";
        let mut list = match &ins.args {
            Args::Exec(v) => v
                .iter()
                .map(|s| self.expand_one(st, ins, s))
                .collect::<Result<Vec<_>, _>>()?,
            Args::Shell(s) => self.expand_words(st, ins, s)?,
        };
        if list.len() < 2 && ins.heredocs.is_empty() {
            return Err(self.err(
                ins,
                format!("{} needs a source and a destination", ins.keyword),
            ));
        }
        let dest_raw = list.pop().unwrap_or_default();
        let workdir = st
            .config
            .config
            .as_ref()
            .and_then(|c| c.working_dir.clone())
            .unwrap_or_else(|| "/".into());
        let dest_abs = clean_abs(&if dest_raw.starts_with('/') {
            dest_raw.clone()
        } else {
            format!("{workdir}/{dest_raw}")
        });
        let dest = Dest::new(
            dest_abs,
            dest_raw.ends_with('/') || dest_raw == "." || list.len() > 1,
        );
        let owner = self.owner(st, ins)?;
        if let (Some(from), true) = (ins.flag("from"), ins.heredocs.is_empty()) {
            return self.copy_from(st, ins, from.to_string(), list, &dest, owner);
        }
        let (dir, content_key, what) = if !ins.heredocs.is_empty() {
            // COPY <<EOF /dest: the heredoc is the file.
            let h = &ins.heredocs[0];
            let content = if h.expand {
                self.expand_one(st, ins, &h.content)?
            } else {
                h.content.clone()
            };
            let name = dest.file_name.clone().unwrap_or_else(|| h.name.clone());
            let key = Digest::of(content.as_bytes()).to_string();
            (dest.dir.clone(), key, Copied::File { name, content })
        } else {
            if add && list.iter().any(|s| super::fetch::is_url(s)) {
                return self.add_urls(st, ins, &list, &dest, owner);
            }
            let items = self.context.select(&list, dest.file_name.as_deref())?;
            let hash = content_hash(&items, &mut self.stats)?;
            // ADD unpacks a local archive given alone.
            let archive = if add && items.len() == 1 && items[0].kind == super::context::Kind::File
            {
                archive_kind(&items[0].host)
            } else {
                None
            };
            match archive {
                Some(kind) => (
                    dest.abs.clone(),
                    format!("archive {hash}"),
                    Copied::Archive(items[0].host.clone(), kind),
                ),
                None => (dest.dir.clone(), hash.to_string(), Copied::Items(items)),
            }
        };
        self.copy_layer(st, ins, &content_key, &dest, &dir, what, owner)
    }

    /// `COPY --from=NAME` of a `--build-context NAME=DIR`: the sources
    /// are selected and hashed as the main context's are, so a changed file
    /// there is a cache miss (buildah #5560).
    #[allow(clippy::too_many_arguments)]
    fn copy_from_dir(
        &mut self,
        st: &mut State,
        ins: &Instruction,
        name: &str,
        dir: PathBuf,
        sources: &[String],
        dest: &Dest,
        owner: Owner,
    ) -> Result<(), BuildError> {
        let ctx = Context {
            root: dir,
            ignore: Default::default(),
        };
        let items = ctx.select(sources, dest.file_name.as_deref())?;
        let hash = content_hash(&items, &mut self.stats)?;
        let key = format!("context {name} {hash}");
        self.copy_layer(st, ins, &key, dest, &dest.dir, Copied::Items(items), owner)
    }

    /// The layer of a COPY/ADD of `what` (named relative to `dir`), keyed
    /// on `content_key`. Nothing is read or written for it on a hit.
    #[allow(clippy::too_many_arguments)]
    fn copy_layer(
        &mut self,
        st: &mut State,
        ins: &Instruction,
        content_key: &str,
        dest: &Dest,
        dir: &str,
        what: Copied,
        owner: Owner,
    ) -> Result<(), BuildError> {
        let canonical = format!(
            "/bin/sh -c #(nop) {} {} in {}",
            ins.keyword, content_key, dest.abs
        );
        let extra = format!("{:?}|{:?}", owner_key(ins), dir);
        self.layer_step(st, &canonical, &extra, &mut |b, st| {
            let tmp = b.engine.store.temp_path("build-copy")?;
            let source = match &what {
                Copied::Items(items) => layer::Source::Items {
                    items,
                    owner,
                    mtime: b.opts.timestamp,
                },
                Copied::File { name, content } => {
                    let mtime = b
                        .opts
                        .timestamp
                        .unwrap_or_else(|| chrono::Utc::now().timestamp());
                    std::fs::File::create(tmp.path())
                        .and_then(|f| layer::file_tar(name, content.as_bytes(), owner, mtime, f))
                        .map_err(BuildError::io("writing the copy"))?;
                    layer::Source::Tar(tmp.path())
                }
                Copied::Tar(path) => layer::Source::Tar(path),
                Copied::Archive(host, kind) => {
                    let f = std::fs::File::create(tmp.path())
                        .map_err(BuildError::io("writing the copy"))?;
                    decompress_to(host, *kind, f)
                        .map_err(BuildError::io(format!("unpacking {}", host.display())))?;
                    layer::Source::Tar(tmp.path())
                }
            };
            layer::layer_from(
                b.engine,
                &st.lowers(b.engine),
                st.parent_chain().as_ref(),
                dir,
                source,
                b.opts.timestamp,
                (owner.uid as u32, owner.gid as u32),
            )
        })
    }

    /// `ADD URL… DEST`: each URL downloaded (every build: the content,
    /// not the URL, is the cache key), then written as files of mode 0600
    /// (docker's) with the server's Last-Modified time. `--checksum`
    /// pins the content.
    fn add_urls(
        &mut self,
        st: &mut State,
        ins: &Instruction,
        list: &[String],
        dest: &Dest,
        owner: Owner,
    ) -> Result<(), BuildError> {
        use super::fetch;
        if let Some(local) = list.iter().find(|s| !fetch::is_url(s)) {
            return Err(self.err(
                ins,
                format!(
                    "ADD {local}: one ADD takes URLs or context files, not both; use two ADD lines"
                ),
            ));
        }
        let checksum = ins.flag("checksum");
        if checksum.is_some() && list.len() > 1 {
            return Err(self.err(ins, "ADD --checksum takes one URL".into()));
        }
        let tmp = self.engine.store.temp_path("build-add")?;
        std::fs::create_dir(tmp.path()).map_err(BuildError::io("making a download dir"))?;
        let mut files = Vec::new();
        for (i, url) in list.iter().enumerate() {
            let path = tmp.path().join(i.to_string());
            self.say(&format!("Downloading {url}"));
            let got =
                fetch::fetch(url, &path).map_err(|e| self.err(ins, format!("ADD {url}: {e}")))?;
            if let Some(want) = checksum {
                if want != got.digest.to_string() {
                    return Err(self.err(
                        ins,
                        format!(
                            "ADD {url}: the download's digest is {}, not --checksum={want}",
                            got.digest
                        ),
                    ));
                }
            }
            let name = match (&dest.file_name, got.name.is_empty()) {
                (Some(n), _) => n.clone(),
                (None, false) => got.name.clone(),
                (None, true) => {
                    return Err(self.err(
                        ins,
                        format!(
                            "ADD {url}: the URL names no file; give the destination a file name"
                        ),
                    ))
                }
            };
            files.push((name, path, got));
        }
        let tar_path = tmp.path().join("layer.tar");
        let now = chrono::Utc::now().timestamp();
        let write = || -> std::io::Result<()> {
            let mut b =
                tar::Builder::new(std::io::BufWriter::new(std::fs::File::create(&tar_path)?));
            for (name, path, got) in &files {
                let mut h = tar::Header::new_gnu();
                h.set_uid(owner.uid);
                h.set_gid(owner.gid);
                h.set_mode(owner.mode.unwrap_or(0o600));
                h.set_mtime(self.opts.timestamp.or(got.mtime).unwrap_or(now).max(0) as u64);
                h.set_size(got.size);
                h.set_entry_type(tar::EntryType::Regular);
                b.append_data(&mut h, name, std::fs::File::open(path)?)?;
            }
            b.into_inner()?.flush()
        };
        write().map_err(BuildError::io("writing the downloads"))?;
        let key: Vec<String> = files
            .iter()
            .map(|(name, _, got)| format!("{name}={}", got.digest))
            .collect();
        let dir = dest.dir.clone();
        self.copy_layer(
            st,
            ins,
            &format!("url {}", key.join(",")),
            dest,
            &dir,
            Copied::Tar(tar_path),
            owner,
        )
    }

    fn copy_from(
        &mut self,
        st: &mut State,
        ins: &Instruction,
        from: String,
        sources: Vec<String>,
        dest: &Dest,
        owner: Owner,
    ) -> Result<(), BuildError> {
        let from = match self.opts.named_contexts.get(&from) {
            Some(super::NamedContext::Dir(d)) => {
                return self.copy_from_dir(st, ins, &from, d.clone(), &sources, dest, owner)
            }
            Some(super::NamedContext::Image(i)) => i.clone(),
            None => from,
        };
        let (src_layers, src_key) = match self.stage_index(&from).and_then(|i| self.done.get(&i)) {
            Some(s) => (s.clone(), s.key.to_string()),
            None => {
                let img = self.base_image(&from)?;
                let layers = layer_stack::layers_of(&self.engine.store, &img);
                let mut s = st.clone();
                s.layers = layers;
                (s, img.id.to_string())
            }
        };
        let lowers = src_layers.lowers(self.engine);
        let tmp = self.engine.store.temp_path("build-from")?;
        let tar_path = tmp.path().to_path_buf();
        let (dir, file_name) = (&dest.dir, &dest.file_name);
        let canonical = format!(
            "/bin/sh -c #(nop) COPY --from={from} {} in {}",
            sources.join(" "),
            dest.abs
        );
        let extra = format!("{src_key}|{:?}|{dir}", owner_key(ins));
        let chown = ins.flag("chown").is_some();
        let r = self.layer_step(st, &canonical, &extra, &mut |b, st| {
            super::from_stage::tar_from_root(
                b.engine,
                &lowers,
                &sources,
                file_name.as_deref(),
                if chown { Some(owner) } else { None },
                owner.mode,
                &tar_path,
            )?;
            layer::layer_from(
                b.engine,
                &st.lowers(b.engine),
                st.parent_chain().as_ref(),
                dir,
                layer::Source::Tar(&tar_path),
                b.opts.timestamp,
                (owner.uid as u32, owner.gid as u32),
            )
        });
        drop(tmp);
        r
    }

    /// `--chown` (numbers, or names in the image's passwd and group) and `--chmod`.
    fn owner(&self, st: &State, ins: &Instruction) -> Result<Owner, BuildError> {
        let mut o = Owner::default();
        if let Some(c) = ins.flag("chown") {
            let c = self.expand_one(st, ins, c)?;
            let lowers = st.lowers(self.engine);
            let dirs: Vec<&Path> = lowers.iter().map(|p| p.as_path()).collect();
            let ids = crate::engine::user::resolve(&c, &dirs)
                .map_err(|e| self.err(ins, format!("--chown={c}: {e}")))?;
            o.uid = ids.uid as u64;
            o.gid = ids.gid as u64;
        }
        if let Some(m) = ins.flag("chmod") {
            o.mode = Some(u32::from_str_radix(m, 8).map_err(|_| {
                self.err(ins, format!("--chmod={m}: use an octal mode such as 0755"))
            })?);
        }
        Ok(o)
    }
}

fn owner_key(ins: &Instruction) -> String {
    format!("{:?}{:?}", ins.flag("chown"), ins.flag("chmod"))
}

fn instr_err(file: &str, ins: &Instruction, problem: String) -> BuildError {
    BuildError::Instruction {
        file: file.to_string(),
        line: ins.line,
        problem,
    }
}

/// `ARG a b=1`: the names declared, with their defaults.
fn arg_decls(
    ins: &Instruction,
    vars: &dyn Fn(&str) -> Option<String>,
    escape: char,
) -> Result<Vec<(String, Option<String>)>, String> {
    let text = match &ins.args {
        Args::Shell(s) => s.clone(),
        Args::Exec(v) => v.join(" "),
    };
    let mut out = Vec::new();
    for w in words::words(&text, vars, escape).map_err(|e| e.to_string())? {
        match w.split_once('=') {
            Some((k, v)) => out.push((k.to_string(), Some(v.to_string()))),
            None => out.push((w, None)),
        }
    }
    Ok(out)
}

/// HEALTHCHECK as docker stores it (durations in nanoseconds).
fn healthcheck(ins: &Instruction) -> Result<serde_json::Value, String> {
    let text = match &ins.args {
        Args::Shell(s) => s.clone(),
        Args::Exec(v) => v.join(" "),
    };
    if text.trim().eq_ignore_ascii_case("none") {
        return Ok(serde_json::json!({"Test": ["NONE"]}));
    }
    let mut hc = serde_json::Map::new();
    for (k, v) in &ins.flags {
        let field = match k.as_str() {
            "interval" => "Interval",
            "timeout" => "Timeout",
            "start-period" => "StartPeriod",
            "start-interval" => "StartInterval",
            "retries" => {
                let n: u64 = v
                    .parse()
                    .map_err(|_| format!("--retries={v}: not a number"))?;
                hc.insert("Retries".into(), n.into());
                continue;
            }
            other => return Err(format!("unknown HEALTHCHECK flag --{other}")),
        };
        hc.insert(
            field.into(),
            duration_ns(v)
                .ok_or_else(|| format!("--{k}={v}: not a duration such as 30s"))?
                .into(),
        );
    }
    let rest = text.trim();
    let cmd = rest
        .strip_prefix("CMD")
        .or_else(|| rest.strip_prefix("cmd"))
        .ok_or("HEALTHCHECK takes CMD COMMAND or NONE")?
        .trim();
    let test: Vec<String> = match serde_json::from_str::<Vec<String>>(cmd) {
        Ok(v) => std::iter::once("CMD".to_string()).chain(v).collect(),
        Err(_) => vec!["CMD-SHELL".into(), cmd.to_string()],
    };
    hc.insert("Test".into(), test.into());
    Ok(serde_json::Value::Object(hc))
}

fn duration_ns(s: &str) -> Option<u64> {
    let (num, unit) = s.split_at(s.find(|c: char| c.is_alphabetic())?);
    let n: f64 = num.parse().ok()?;
    let mult = match unit {
        "ns" => 1.0,
        "us" | "µs" => 1e3,
        "ms" => 1e6,
        "s" => 1e9,
        "m" => 60e9,
        "h" => 3600e9,
        _ => return None,
    };
    Some((n * mult) as u64)
}

/// `/srv/./www/` -> `/srv/www`.
fn clean_abs(p: &str) -> String {
    let parts: Vec<String> = crate::util::secure_path::clean_components(p.as_bytes())
        .iter()
        .map(|c| String::from_utf8_lossy(c).into_owned())
        .collect();
    format!("/{}", parts.join("/"))
}

fn parent_of(p: &str) -> String {
    match p.trim_end_matches('/').rsplit_once('/') {
        Some(("", _)) | None => "/".into(),
        Some((d, _)) => d.to_string(),
    }
}

/// Where a `RUN --mount=type=bind` with `from=` or `rw` gets its files.
enum BindSource {
    /// A context path, bound as it is (read-only).
    Host(PathBuf),
    /// A context path, copied first (read-write: writes reach no file).
    CopyOf(PathBuf),
    /// A path inside a stage's or an image's layers, copied out.
    Root {
        lowers: Vec<PathBuf>,
        source: String,
    },
}

/// Where a COPY or ADD puts its sources: the directory they go into,
/// and the name a single file (or directory) takes when the destination
/// names it rather than a directory.
struct Dest {
    /// The destination, absolute and clean.
    abs: String,
    dir: String,
    file_name: Option<String>,
}

impl Dest {
    fn new(abs: String, is_dir: bool) -> Dest {
        let file_name = if is_dir {
            None
        } else {
            abs.rsplit('/')
                .next()
                .filter(|n| !n.is_empty())
                .map(String::from)
        };
        let dir = if file_name.is_some() {
            parent_of(&abs)
        } else {
            abs.clone()
        };
        Dest {
            abs,
            dir,
            file_name,
        }
    }
}

/// What kind of archive ADD unpacks, by its first bytes.
#[derive(Clone, Copy, Debug)]
enum ArchiveKind {
    Tar,
    Gzip,
    Zstd,
}

fn archive_kind(p: &Path) -> Option<ArchiveKind> {
    let mut head = [0u8; 262];
    let mut f = std::fs::File::open(p).ok()?;
    let n = std::io::Read::read(&mut f, &mut head).ok()?;
    let h = &head[..n];
    if h.starts_with(&[0x1f, 0x8b]) {
        Some(ArchiveKind::Gzip)
    } else if h.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        Some(ArchiveKind::Zstd)
    } else if n >= 262 && &h[257..262] == b"ustar" {
        Some(ArchiveKind::Tar)
    } else {
        None
    }
}

fn decompress_to(p: &Path, kind: ArchiveKind, mut out: impl Write) -> std::io::Result<()> {
    let f = std::io::BufReader::new(std::fs::File::open(p)?);
    match kind {
        ArchiveKind::Tar => std::io::copy(&mut { f }, &mut out).map(|_| ()),
        ArchiveKind::Gzip => {
            std::io::copy(&mut flate2::read::GzDecoder::new(f), &mut out).map(|_| ())
        }
        ArchiveKind::Zstd => std::io::copy(&mut zstd::Decoder::new(f)?, &mut out).map(|_| ()),
    }
}

/// The last `n` lines a container wrote to its k8s-file log.
fn log_tail(path: &Path, n: usize) -> Vec<String> {
    let lines: Vec<String> = crate::monitor::logfile::read_all(path)
        .unwrap_or_default()
        .into_iter()
        .map(|e| String::from_utf8_lossy(&e.content).trim_end().to_string())
        .filter(|l| !l.trim().is_empty())
        .collect();
    lines[lines.len().saturating_sub(n)..].to_vec()
}

/// Sends this process's stdout to /dev/null while alive (`-q`: a RUN's
/// output is not shown).
struct QuietStdout(Option<i32>);

impl QuietStdout {
    fn new(quiet: bool) -> QuietStdout {
        if !quiet {
            return QuietStdout(None);
        }
        // SAFETY: dup/open/dup2 on fds this process owns.
        unsafe {
            let saved = libc::dup(1);
            let null = libc::open(c"/dev/null".as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC);
            if saved < 0 || null < 0 {
                return QuietStdout(None);
            }
            libc::dup2(null, 1);
            libc::close(null);
            QuietStdout(Some(saved))
        }
    }
}

impl Drop for QuietStdout {
    fn drop(&mut self) {
        if let Some(saved) = self.0 {
            // SAFETY: restoring the saved stdout.
            unsafe {
                libc::dup2(saved, 1);
                libc::close(saved);
            }
        }
    }
}
