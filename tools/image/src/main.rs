//! Writes a container image from `scratch` as an OCI archive (an OCI image
//! layout in a tar file), with no container daemon: the layout is written by
//! `ocidir`, then packed for `ctr images import`, `docker load` or
//! `podman load`.
//!
//! One layer holds the given files (owned by root, modes kept) and symlinks;
//! the config sets the user, entrypoint and command. Timestamps are fixed, so
//! the same inputs give the same image digest.
//!
//! ```text
//! approval-gate-image --name docker.io/approval-gate/approval-gate:0.1.0 \
//!   --file /approval-gate=target/x86_64-unknown-linux-musl/release/approval-gate \
//!   --user 65532:65532 --entrypoint /approval-gate --cmd serve \
//!   --out target/image/approval-gate.oci.tar
//! ```

use std::{
    collections::BTreeSet,
    fs::File,
    io::{self, BufWriter},
    os::unix::fs::PermissionsExt as _,
    path::{Path, PathBuf},
};

use cap_std_ext::cap_std::{ambient_authority, fs::Dir};
use clap::Parser;
use oci_spec::image::{
    Arch, ConfigBuilder, ImageConfigurationBuilder, ImageIndex, Os, PlatformBuilder, RootFsBuilder,
};
use ocidir::OciDir;

/// containerd names an imported image after this annotation of the index.
const CONTAINERD_NAME: &str = "io.containerd.image.name";

#[derive(Debug, thiserror::Error)]
enum Error {
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: io::Error,
    },
    #[error("writing the OCI layout: {0}")]
    Layout(#[from] ocidir::Error),
    #[error("building the image metadata: {0}")]
    Spec(#[from] oci_spec::OciSpecError),
    #[error("{0}")]
    Usage(String),
}

type Result<T, E = Error> = std::result::Result<T, E>;

fn io_error(what: impl Into<String>) -> impl FnOnce(io::Error) -> Error {
    let what = what.into();
    move |source| Error::Io { what, source }
}

#[derive(Debug, Parser)]
#[command(about = "Write a container image from scratch as an OCI archive, without a daemon")]
struct Args {
    /// The image's full name, as containerd and kubelet look it up
    /// (`docker.io/org/name:tag`); the tag is also the OCI ref name.
    #[arg(long)]
    name: String,
    /// A file in the image: `DEST=SRC` (DEST absolute). Its mode is kept.
    #[arg(long = "file", value_name = "DEST=SRC")]
    files: Vec<String>,
    /// A symbolic link in the image: `LINK=TARGET`.
    #[arg(long = "symlink", value_name = "LINK=TARGET")]
    symlinks: Vec<String>,
    /// The user the image runs as (`uid:gid`).
    #[arg(long)]
    user: Option<String>,
    /// One word of the entrypoint, in order.
    #[arg(long = "entrypoint")]
    entrypoint: Vec<String>,
    /// One word of the default command, in order.
    #[arg(long = "cmd")]
    cmd: Vec<String>,
    /// Where the OCI archive goes.
    #[arg(long)]
    out: PathBuf,
}

fn main() {
    let args = Args::parse();
    if let Err(err) = run(&args) {
        let mut message = err.to_string();
        let mut source = std::error::Error::source(&err);
        while let Some(cause) = source {
            message.push_str(&format!(": {cause}"));
            source = cause.source();
        }
        eprintln!("approval-gate-image: {message}");
        std::process::exit(1);
    }
}

fn run(args: &Args) -> Result<()> {
    let files = args
        .files
        .iter()
        .map(|f| pair(f, "--file"))
        .collect::<Result<Vec<_>>>()?;
    let symlinks = args
        .symlinks
        .iter()
        .map(|s| pair(s, "--symlink"))
        .collect::<Result<Vec<_>>>()?;
    let tag = tag_of(&args.name)?;

    let work = tempfile::tempdir().map_err(io_error("creating a temporary folder"))?;
    let dir = Dir::open_ambient_dir(work.path(), ambient_authority())
        .map_err(io_error("opening the temporary folder"))?;
    let oci = OciDir::ensure(dir)?;

    let mut layer = oci.create_layer(None)?;
    for parent in parents(files.iter().chain(&symlinks).map(|(dest, _)| dest.as_str())) {
        let mut header = header(tar::EntryType::Directory, 0o755);
        layer
            .append_data(&mut header, &parent, io::empty())
            .map_err(io_error(format!("adding {parent}")))?;
    }
    for (dest, src) in &files {
        let file = File::open(src).map_err(io_error(format!("opening {src}")))?;
        let meta = file
            .metadata()
            .map_err(io_error(format!("reading {src}")))?;
        let mut header = header(tar::EntryType::Regular, meta.permissions().mode() & 0o7777);
        header.set_size(meta.len());
        layer
            .append_data(&mut header, relative(dest), file)
            .map_err(io_error(format!("adding {src} as {dest}")))?;
    }
    for (link, target) in &symlinks {
        let mut header = header(tar::EntryType::Symlink, 0o777);
        layer
            .append_link(&mut header, relative(link), target)
            .map_err(io_error(format!("adding the link {link}")))?;
    }
    let layer = layer
        .into_inner()
        .map_err(io_error("finishing the layer"))?
        .complete()?;

    let epoch = chrono::DateTime::UNIX_EPOCH;
    let mut runtime = ConfigBuilder::default();
    if let Some(user) = &args.user {
        runtime = runtime.user(user.clone());
    }
    if !args.entrypoint.is_empty() {
        runtime = runtime.entrypoint(args.entrypoint.clone());
    }
    if !args.cmd.is_empty() {
        runtime = runtime.cmd(args.cmd.clone());
    }
    let mut config = ImageConfigurationBuilder::default()
        .architecture(Arch::Amd64)
        .os(Os::Linux)
        .created(epoch.to_rfc3339())
        .config(runtime.build()?)
        .rootfs(
            RootFsBuilder::default()
                .typ("layers")
                .diff_ids(Vec::<String>::new())
                .build()?,
        )
        .build()?;
    let mut manifest = oci.new_empty_manifest()?.build()?;
    oci.push_layer_full(
        &mut manifest,
        &mut config,
        layer,
        None::<std::collections::HashMap<String, String>>,
        "approval-gate-image",
        epoch,
    );
    let platform = PlatformBuilder::default()
        .architecture(Arch::Amd64)
        .os(Os::Linux)
        .build()?;
    oci.insert_manifest_and_config(manifest, config, Some(tag), platform)?;
    name_for_containerd(work.path(), &args.name)?;
    pack(work.path(), &args.out)
}

/// Splits `LEFT=RIGHT`.
fn pair(value: &str, flag: &str) -> Result<(String, String)> {
    match value.split_once('=') {
        Some((left, right)) if left.starts_with('/') && !right.is_empty() => {
            Ok((left.to_owned(), right.to_owned()))
        }
        _ => Err(Error::Usage(format!(
            "{flag} {value}: expected an absolute path in the image, `=`, then a value"
        ))),
    }
}

/// The tag of a full image name (`docker.io/org/name:tag` → `tag`).
fn tag_of(name: &str) -> Result<&str> {
    let last = name.rsplit('/').next().unwrap_or(name);
    match last.split_once(':') {
        Some((_, tag)) if !tag.is_empty() && name.contains('/') => Ok(tag),
        _ => Err(Error::Usage(format!(
            "--name {name}: expected a full name with a registry and a tag, such as \
             docker.io/org/name:tag"
        ))),
    }
}

/// Every folder above the given paths, parents first.
fn parents<'a>(paths: impl Iterator<Item = &'a str>) -> BTreeSet<String> {
    let mut dirs = BTreeSet::new();
    for path in paths {
        let mut parent = Path::new(relative(path)).parent();
        while let Some(dir) = parent.filter(|d| !d.as_os_str().is_empty()) {
            dirs.insert(format!("{}/", dir.display()));
            parent = dir.parent();
        }
    }
    dirs
}

fn relative(path: &str) -> &str {
    path.trim_start_matches('/')
}

/// A tar header owned by root with a fixed timestamp.
fn header(kind: tar::EntryType, mode: u32) -> tar::Header {
    let mut header = tar::Header::new_gnu();
    header.set_entry_type(kind);
    header.set_mode(mode);
    header.set_uid(0);
    header.set_gid(0);
    header.set_mtime(0);
    header.set_size(0);
    header
}

/// Adds the annotation containerd names an imported image by, beside the
/// OCI ref name (the tag) that `ocidir` writes.
fn name_for_containerd(layout: &Path, name: &str) -> Result<()> {
    let path = layout.join("index.json");
    let mut index = ImageIndex::from_file(&path)?;
    let manifests = index
        .manifests()
        .iter()
        .cloned()
        .map(|mut descriptor| {
            let mut annotations = descriptor.annotations().clone().unwrap_or_default();
            annotations.insert(CONTAINERD_NAME.to_owned(), name.to_owned());
            descriptor.set_annotations(Some(annotations));
            descriptor
        })
        .collect();
    index.set_manifests(manifests);
    index.to_file(&path)?;
    Ok(())
}

/// Packs the layout into one tar file: `oci-layout`, `index.json` and the blobs.
fn pack(layout: &Path, out: &Path) -> Result<()> {
    if let Some(parent) = out.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)
            .map_err(io_error(format!("creating {}", parent.display())))?;
    }
    let partial = out.with_extension("partial");
    let file =
        File::create(&partial).map_err(io_error(format!("creating {}", partial.display())))?;
    let mut archive = tar::Builder::new(BufWriter::new(file));
    archive.mode(tar::HeaderMode::Deterministic);
    let blobs = layout.join("blobs/sha256");
    let mut digests: Vec<_> = std::fs::read_dir(&blobs)
        .map_err(io_error("listing the blobs"))?
        .map(|entry| entry.map(|e| e.file_name()))
        .collect::<io::Result<_>>()
        .map_err(io_error("listing the blobs"))?;
    digests.sort();
    let mut names = vec![PathBuf::from("oci-layout"), PathBuf::from("index.json")];
    names.extend(digests.iter().map(|d| Path::new("blobs/sha256").join(d)));
    for name in names {
        archive
            .append_path_with_name(layout.join(&name), &name)
            .map_err(io_error(format!("packing {}", name.display())))?;
    }
    archive
        .into_inner()
        .map_err(io_error("finishing the archive"))?
        .into_inner()
        .map_err(|e| Error::Io {
            what: "writing the archive".to_owned(),
            source: e.into_error(),
        })?
        .sync_all()
        .map_err(io_error("writing the archive"))?;
    std::fs::rename(&partial, out).map_err(io_error(format!("writing {}", out.display())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_need_a_registry_and_a_tag() {
        assert_eq!(
            tag_of("docker.io/approval-gate/approval-gate:0.1.0").ok(),
            Some("0.1.0")
        );
        assert_eq!(tag_of("localhost:5000/x:dev").ok(), Some("dev"));
        assert!(tag_of("approval-gate").is_err());
        assert!(tag_of("docker.io/approval-gate/approval-gate").is_err());
        assert!(tag_of("localhost:5000/x").is_err());
    }

    #[test]
    fn pairs_need_an_absolute_destination() {
        assert_eq!(
            pair("/bin/sh=busybox", "--symlink").ok(),
            Some(("/bin/sh".to_owned(), "busybox".to_owned()))
        );
        assert!(pair("bin/sh=busybox", "--symlink").is_err());
        assert!(pair("/bin/sh=", "--symlink").is_err());
        assert!(pair("/bin/sh", "--symlink").is_err());
    }

    #[test]
    fn parents_come_before_their_children() {
        let dirs: Vec<_> = parents(["/bin/sh", "/usr/local/bin/x", "/top"].into_iter())
            .into_iter()
            .collect();
        assert_eq!(dirs, ["bin/", "usr/", "usr/local/", "usr/local/bin/"]);
    }
}
