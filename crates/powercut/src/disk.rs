//! The disk model: a live file tree (what processes see through the mount)
//! over a backing directory that holds only what is durable. See the crate
//! documentation for the rules; this module carries them out.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::ffi::{OsStr, OsString};
use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use fuser::Errno;

use crate::{CutReport, Flush};

/// The unit in which unsynced data is kept, and torn at a cut.
pub(crate) const PAGE: u64 = 4096;

/// The root directory's inode number (FUSE's).
pub(crate) const ROOT: u64 = 1;

pub(crate) type Result<T> = std::result::Result<T, Errno>;

fn io_err(e: io::Error) -> Errno {
    Errno::from(e)
}

#[derive(Debug)]
pub(crate) enum Kind {
    Dir(BTreeMap<OsString, u64>),
    File(Box<FileState>),
}

/// A regular file's data: durable in the backing file, the rest in pages.
#[derive(Debug, Default)]
pub(crate) struct FileState {
    /// Size as processes see it.
    pub(crate) size: u64,
    /// Length of the backing file (0 while it has none).
    durable_size: u64,
    /// The lowest size the file had since the last journal commit (never
    /// above `durable_size`): backing bytes at or past it are not part of
    /// the live file.
    trunc_to: u64,
    /// Unsynced pages, each `PAGE` bytes: the live content of that page.
    pages: BTreeMap<u64, Vec<u8>>,
    /// Created since the last commit.
    created: bool,
    /// Written to, resized or renamed since the last commit (what a full
    /// `fsync` commits for).
    meta_dirty: bool,
    /// Open handle on the backing file, for reads and flushes.
    handle: Option<File>,
}

impl FileState {
    /// Backing bytes below this are part of the live file.
    fn limit(&self) -> u64 {
        self.trunc_to.min(self.durable_size)
    }

    /// The size or a truncation still needs a journal commit.
    fn size_dirty(&self) -> bool {
        self.size != self.durable_size || self.trunc_to < self.durable_size
    }
}

#[derive(Debug)]
pub(crate) struct Node {
    pub(crate) kind: Kind,
    /// Live parent and name (meaningless once `linked` is false).
    parent: u64,
    name: OsString,
    linked: bool,
    /// Path of this node in the backing directory, relative to it, if it
    /// has a durable name.
    durable: Option<PathBuf>,
    pub(crate) perm: u16,
    pub(crate) uid: u32,
    pub(crate) gid: u32,
    pub(crate) mtime: SystemTime,
    open: u32,
}

/// One pending namespace operation, by live path at the time it was made
/// (which is the durable path once the entries before it are committed).
#[derive(Debug)]
enum Entry {
    Create(PathBuf, u64),
    Mkdir(PathBuf, u64),
    Unlink(PathBuf),
    Rmdir(PathBuf),
    Rename(PathBuf, PathBuf),
}

#[derive(Debug)]
pub(crate) struct Disk {
    backing: PathBuf,
    flush: Flush,
    pub(crate) nodes: HashMap<u64, Node>,
    next_ino: u64,
    /// Inodes by durable path.
    by_path: HashMap<PathBuf, u64>,
    journal: Vec<Entry>,
    /// Directories changed by pending entries.
    dirty_dirs: HashSet<u64>,
    /// Open file and directory handles.
    pub(crate) handles: u64,
    next_fh: u64,
    /// False between the start of a cut and the next mount: every
    /// operation fails.
    pub(crate) powered: bool,
}

/// A small seeded generator (splitmix64), so a torn cut reproduces from
/// its seed on any build.
#[derive(Debug)]
pub(crate) struct Rng(u64);

impl Rng {
    pub(crate) fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    pub(crate) fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}

impl Disk {
    /// The disk whose durable content is the backing directory.
    pub(crate) fn load(backing: &Path, flush: Flush) -> io::Result<Disk> {
        let mut disk = Disk {
            backing: backing.to_path_buf(),
            flush,
            nodes: HashMap::new(),
            next_ino: ROOT + 1,
            by_path: HashMap::new(),
            journal: Vec::new(),
            dirty_dirs: HashSet::new(),
            handles: 0,
            next_fh: 1,
            powered: true,
        };
        disk.reload()?;
        Ok(disk)
    }

    /// Forgets everything not durable and reads the tree from the backing
    /// directory again. Inode numbers start over (a new mount).
    fn reload(&mut self) -> io::Result<()> {
        self.nodes.clear();
        self.by_path.clear();
        self.journal.clear();
        self.dirty_dirs.clear();
        self.handles = 0;
        self.next_ino = ROOT + 1;
        self.powered = true;
        let meta = std::fs::metadata(&self.backing)?;
        self.nodes.insert(
            ROOT,
            Node {
                kind: Kind::Dir(BTreeMap::new()),
                parent: ROOT,
                name: OsString::new(),
                linked: true,
                durable: Some(PathBuf::new()),
                perm: (meta.mode() & 0o7777) as u16,
                uid: meta.uid(),
                gid: meta.gid(),
                mtime: meta.modified().unwrap_or(SystemTime::UNIX_EPOCH),
                open: 0,
            },
        );
        self.by_path.insert(PathBuf::new(), ROOT);
        let mut todo = vec![(ROOT, PathBuf::new())];
        while let Some((dir, rel)) = todo.pop() {
            let mut entries = Vec::new();
            for entry in std::fs::read_dir(self.backing.join(&rel))? {
                entries.push(entry?);
            }
            for entry in entries {
                let meta = entry.metadata()?;
                let name = entry.file_name();
                let path = rel.join(&name);
                let kind = if meta.is_dir() {
                    Kind::Dir(BTreeMap::new())
                } else if meta.is_file() {
                    Kind::File(Box::new(FileState {
                        size: meta.len(),
                        durable_size: meta.len(),
                        trunc_to: meta.len(),
                        ..FileState::default()
                    }))
                } else {
                    // Only files and directories are modelled.
                    continue;
                };
                let is_dir = meta.is_dir();
                let ino = self.next_ino;
                self.next_ino += 1;
                self.nodes.insert(
                    ino,
                    Node {
                        kind,
                        parent: dir,
                        name: name.clone(),
                        linked: true,
                        durable: Some(path.clone()),
                        perm: (meta.mode() & 0o7777) as u16,
                        uid: meta.uid(),
                        gid: meta.gid(),
                        mtime: meta.modified().unwrap_or(SystemTime::UNIX_EPOCH),
                        open: 0,
                    },
                );
                self.by_path.insert(path.clone(), ino);
                if let Some(Kind::Dir(children)) = self.nodes.get_mut(&dir).map(|n| &mut n.kind) {
                    children.insert(name, ino);
                }
                if is_dir {
                    todo.push((ino, path));
                }
            }
        }
        Ok(())
    }

    fn check_power(&self) -> Result<()> {
        if self.powered {
            Ok(())
        } else {
            Err(Errno::EIO)
        }
    }

    pub(crate) fn node(&self, ino: u64) -> Result<&Node> {
        self.check_power()?;
        self.nodes.get(&ino).ok_or(Errno::ENOENT)
    }

    fn node_mut(&mut self, ino: u64) -> Result<&mut Node> {
        self.check_power()?;
        self.nodes.get_mut(&ino).ok_or(Errno::ENOENT)
    }

    fn children(&self, dir: u64) -> Result<&BTreeMap<OsString, u64>> {
        match &self.node(dir)?.kind {
            Kind::Dir(children) => Ok(children),
            Kind::File(_) => Err(Errno::ENOTDIR),
        }
    }

    fn children_mut(&mut self, dir: u64) -> Result<&mut BTreeMap<OsString, u64>> {
        match &mut self.node_mut(dir)?.kind {
            Kind::Dir(children) => Ok(children),
            Kind::File(_) => Err(Errno::ENOTDIR),
        }
    }

    fn file_mut(&mut self, ino: u64) -> Result<&mut FileState> {
        match &mut self.node_mut(ino)?.kind {
            Kind::File(f) => Ok(f),
            Kind::Dir(_) => Err(Errno::EISDIR),
        }
    }

    /// The live path of a linked node, relative to the root.
    fn live_path(&self, ino: u64) -> Result<PathBuf> {
        let mut parts = Vec::new();
        let mut at = ino;
        while at != ROOT {
            let node = self.node(at)?;
            if !node.linked {
                return Err(Errno::ENOENT);
            }
            parts.push(node.name.clone());
            at = node.parent;
        }
        Ok(parts.iter().rev().collect())
    }

    pub(crate) fn lookup(&self, parent: u64, name: &OsStr) -> Result<u64> {
        self.children(parent)?
            .get(name)
            .copied()
            .ok_or(Errno::ENOENT)
    }

    /// Children of a directory for readdir: `.`, `..`, then by name.
    pub(crate) fn list(&self, dir: u64) -> Result<Vec<(u64, bool, OsString)>> {
        let parent = self.node(dir)?.parent;
        let mut out = vec![
            (dir, true, OsString::from(".")),
            (parent, true, OsString::from("..")),
        ];
        for (name, &ino) in self.children(dir)? {
            let is_dir = matches!(self.node(ino)?.kind, Kind::Dir(_));
            out.push((ino, is_dir, name.clone()));
        }
        Ok(out)
    }

    fn new_node(
        &mut self,
        parent: u64,
        name: &OsStr,
        kind: Kind,
        perm: u16,
        uid: u32,
        gid: u32,
    ) -> u64 {
        let ino = self.next_ino;
        self.next_ino += 1;
        self.nodes.insert(
            ino,
            Node {
                kind,
                parent,
                name: name.to_os_string(),
                linked: true,
                durable: None,
                perm,
                uid,
                gid,
                mtime: SystemTime::now(),
                open: 0,
            },
        );
        ino
    }

    pub(crate) fn create(
        &mut self,
        parent: u64,
        name: &OsStr,
        dir: bool,
        perm: u16,
        uid: u32,
        gid: u32,
    ) -> Result<u64> {
        if self.children(parent)?.contains_key(name) {
            return Err(Errno::EEXIST);
        }
        let kind = if dir {
            Kind::Dir(BTreeMap::new())
        } else {
            Kind::File(Box::new(FileState {
                created: true,
                meta_dirty: true,
                ..FileState::default()
            }))
        };
        let ino = self.new_node(parent, name, kind, perm, uid, gid);
        self.children_mut(parent)?.insert(name.to_os_string(), ino);
        let path = self.live_path(ino)?;
        self.journal.push(if dir {
            Entry::Mkdir(path, ino)
        } else {
            Entry::Create(path, ino)
        });
        self.dirty_dirs.insert(parent);
        Ok(ino)
    }

    /// Removes a name: a file (`dir` false) or an empty directory.
    pub(crate) fn remove(&mut self, parent: u64, name: &OsStr, dir: bool) -> Result<()> {
        let ino = self.lookup(parent, name)?;
        match (&self.node(ino)?.kind, dir) {
            (Kind::Dir(children), true) if !children.is_empty() => return Err(Errno::ENOTEMPTY),
            (Kind::Dir(_), false) => return Err(Errno::EISDIR),
            (Kind::File(_), true) => return Err(Errno::ENOTDIR),
            _ => {}
        }
        let path = self.live_path(ino)?;
        self.children_mut(parent)?.remove(name);
        self.unlinked(ino)?;
        self.journal.push(if dir {
            Entry::Rmdir(path)
        } else {
            Entry::Unlink(path)
        });
        self.dirty_dirs.insert(parent);
        Ok(())
    }

    /// A node lost its live name; a closed file's pages are dropped.
    fn unlinked(&mut self, ino: u64) -> Result<()> {
        let node = self.node_mut(ino)?;
        node.linked = false;
        if node.open == 0 {
            if let Kind::File(f) = &mut node.kind {
                f.pages.clear();
            }
        }
        Ok(())
    }

    pub(crate) fn rename(
        &mut self,
        parent: u64,
        name: &OsStr,
        new_parent: u64,
        new_name: &OsStr,
        noreplace: bool,
    ) -> Result<()> {
        let ino = self.lookup(parent, name)?;
        let is_dir = matches!(self.node(ino)?.kind, Kind::Dir(_));
        self.children(new_parent)?;
        // A directory cannot move into itself.
        let mut at = new_parent;
        while at != ROOT {
            if at == ino {
                return Err(Errno::EINVAL);
            }
            at = self.node(at)?.parent;
        }
        if let Ok(old) = self.lookup(new_parent, new_name) {
            if old == ino {
                return Ok(());
            }
            if noreplace {
                return Err(Errno::EEXIST);
            }
            match (&self.node(old)?.kind, is_dir) {
                (Kind::Dir(children), true) if !children.is_empty() => {
                    return Err(Errno::ENOTEMPTY)
                }
                (Kind::Dir(_), false) => return Err(Errno::EISDIR),
                (Kind::File(_), true) => return Err(Errno::ENOTDIR),
                _ => {}
            }
            self.unlinked(old)?;
        }
        let from = self.live_path(ino)?;
        self.children_mut(parent)?.remove(name);
        self.children_mut(new_parent)?
            .insert(new_name.to_os_string(), ino);
        let node = self.node_mut(ino)?;
        node.parent = new_parent;
        node.name = new_name.to_os_string();
        if let Kind::File(f) = &mut node.kind {
            f.meta_dirty = true;
        }
        let to = self.live_path(ino)?;
        self.journal.push(Entry::Rename(from, to));
        self.dirty_dirs.insert(parent);
        self.dirty_dirs.insert(new_parent);
        Ok(())
    }

    pub(crate) fn opened(&mut self, ino: u64) -> Result<u64> {
        self.node_mut(ino)?.open += 1;
        self.handles += 1;
        let fh = self.next_fh;
        self.next_fh += 1;
        Ok(fh)
    }

    pub(crate) fn released(&mut self, ino: u64) {
        self.handles = self.handles.saturating_sub(1);
        if let Some(node) = self.nodes.get_mut(&ino) {
            node.open = node.open.saturating_sub(1);
            if node.open == 0 && !node.linked {
                if let Kind::File(f) = &mut node.kind {
                    f.pages.clear();
                    f.handle = None;
                }
            }
        }
    }

    /// The backing file of `ino`, opened once.
    fn backing_file(backing: &Path, node: &mut Node) -> Result<Option<File>> {
        let Some(rel) = &node.durable else {
            return Ok(None);
        };
        let Kind::File(f) = &mut node.kind else {
            return Err(Errno::EISDIR);
        };
        if f.handle.is_none() {
            let file = OpenOptions::new()
                .read(true)
                .write(true)
                .open(backing.join(rel))
                .map_err(io_err)?;
            f.handle = Some(file);
        }
        match &f.handle {
            Some(h) => h.try_clone().map(Some).map_err(io_err),
            None => Ok(None),
        }
    }

    /// The live content of page `index` when it has no unsynced page: the
    /// backing bytes below the limit, zeros past it.
    fn base_page(&mut self, ino: u64, index: u64) -> Result<Vec<u8>> {
        let backing = self.backing.clone();
        let node = self.node_mut(ino)?;
        let file = Self::backing_file(&backing, node)?;
        let Kind::File(f) = &node.kind else {
            return Err(Errno::EISDIR);
        };
        let mut page = vec![0u8; PAGE as usize];
        let start = index * PAGE;
        let limit = f.limit();
        if let Some(file) = file {
            if start < limit {
                let n = (limit - start).min(PAGE) as usize;
                read_full(&file, &mut page[..n], start).map_err(io_err)?;
            }
        }
        Ok(page)
    }

    pub(crate) fn read(&mut self, ino: u64, offset: u64, len: u32) -> Result<Vec<u8>> {
        let size = self.file_mut(ino)?.size;
        let end = offset.saturating_add(u64::from(len)).min(size);
        let mut out = Vec::new();
        let mut at = offset;
        while at < end {
            let index = at / PAGE;
            let within = (at % PAGE) as usize;
            let n = ((index + 1) * PAGE).min(end) - at;
            let cached = self.file_mut(ino)?.pages.get(&index).cloned();
            let page = match cached {
                Some(p) => p,
                None => self.base_page(ino, index)?,
            };
            out.extend_from_slice(&page[within..within + n as usize]);
            at += n;
        }
        Ok(out)
    }

    pub(crate) fn write(&mut self, ino: u64, offset: u64, data: &[u8]) -> Result<()> {
        let mut done = 0usize;
        while done < data.len() {
            let at = offset + done as u64;
            let index = at / PAGE;
            let within = (at % PAGE) as usize;
            let n = (PAGE as usize - within).min(data.len() - done);
            if !self.file_mut(ino)?.pages.contains_key(&index) {
                let base = self.base_page(ino, index)?;
                self.file_mut(ino)?.pages.insert(index, base);
            }
            let f = self.file_mut(ino)?;
            if let Some(page) = f.pages.get_mut(&index) {
                page[within..within + n].copy_from_slice(&data[done..done + n]);
            }
            done += n;
        }
        let f = self.file_mut(ino)?;
        f.size = f.size.max(offset + data.len() as u64);
        f.meta_dirty = true;
        self.node_mut(ino)?.mtime = SystemTime::now();
        Ok(())
    }

    pub(crate) fn set_size(&mut self, ino: u64, size: u64) -> Result<()> {
        let f = self.file_mut(ino)?;
        if size < f.size {
            let keep = size.div_ceil(PAGE);
            f.pages.retain(|&index, _| index < keep);
            let within = (size % PAGE) as usize;
            if within != 0 {
                if let Some(page) = f.pages.get_mut(&(size / PAGE)) {
                    page[within..].fill(0);
                }
            }
            f.trunc_to = f.trunc_to.min(size);
        }
        f.size = size;
        f.meta_dirty = true;
        Ok(())
    }

    /// Writes the unsynced bytes of `ino` in `[lo, hi)` to its backing
    /// file; pages wholly inside are durable afterwards.
    fn write_back(&mut self, ino: u64, lo: u64, hi: u64) -> Result<()> {
        let backing = self.backing.clone();
        let node = self.node_mut(ino)?;
        let Some(file) = Self::backing_file(&backing, node)? else {
            return Ok(());
        };
        let Kind::File(f) = &mut node.kind else {
            return Ok(());
        };
        let mut done = Vec::new();
        for (&index, page) in f.pages.range(lo / PAGE..hi.div_ceil(PAGE)) {
            let start = (index * PAGE).max(lo);
            let end = ((index + 1) * PAGE).min(hi);
            if start >= end {
                continue;
            }
            let within = (start - index * PAGE) as usize;
            file.write_all_at(&page[within..within + (end - start) as usize], start)
                .map_err(io_err)?;
            if start == index * PAGE && end == (index + 1) * PAGE {
                done.push(index);
            }
        }
        for index in done {
            f.pages.remove(&index);
        }
        Ok(())
    }

    /// A disk cache flush for one file: its unsynced pages inside the
    /// durable size reach the backing file (past it they wait for the
    /// journal, which commits sizes).
    fn flush_file(&mut self, ino: u64) -> Result<()> {
        let Kind::File(f) = &self.node(ino)?.kind else {
            return Ok(());
        };
        let limit = f.limit();
        self.write_back(ino, 0, limit)
    }

    fn flush_all(&mut self) -> Result<()> {
        let files: Vec<u64> = self
            .nodes
            .iter()
            .filter(|(_, n)| matches!(&n.kind, Kind::File(f) if !f.pages.is_empty()))
            .map(|(&ino, _)| ino)
            .collect();
        for ino in files {
            self.flush_file(ino)?;
        }
        Ok(())
    }

    /// Commits the journal: every pending namespace operation, in order,
    /// then every pending size, with the data that lies past the old size
    /// first (data=ordered).
    fn commit(&mut self) -> Result<()> {
        for entry in std::mem::take(&mut self.journal) {
            self.apply(entry)?;
        }
        self.dirty_dirs.clear();
        let files: Vec<u64> = self
            .nodes
            .iter()
            .filter(|(_, n)| matches!(&n.kind, Kind::File(f) if f.size_dirty() || f.created || f.meta_dirty))
            .map(|(&ino, _)| ino)
            .collect();
        let backing = self.backing.clone();
        for ino in files {
            let node = self.node_mut(ino)?;
            let file = Self::backing_file(&backing, node)?;
            let Kind::File(f) = &mut node.kind else {
                continue;
            };
            f.created = false;
            f.meta_dirty = false;
            let (Some(file), true) = (file, f.size_dirty()) else {
                continue;
            };
            let (limit, size) = (f.limit(), f.size);
            if limit < f.durable_size {
                file.set_len(limit).map_err(io_err)?;
            }
            self.write_back(ino, limit, size)?;
            file.set_len(size).map_err(io_err)?;
            if let Kind::File(f) = &mut self.node_mut(ino)?.kind {
                f.durable_size = size;
                f.trunc_to = size;
            }
        }
        Ok(())
    }

    fn apply(&mut self, entry: Entry) -> Result<()> {
        let full = |rel: &Path| self.backing.join(rel);
        match entry {
            Entry::Create(path, ino) => {
                File::create(full(&path)).map_err(io_err)?;
                self.claim(path, ino);
            }
            Entry::Mkdir(path, ino) => {
                std::fs::create_dir(full(&path)).map_err(io_err)?;
                self.claim(path, ino);
            }
            Entry::Unlink(path) => {
                std::fs::remove_file(full(&path)).map_err(io_err)?;
                self.forget_path(&path);
            }
            Entry::Rmdir(path) => {
                std::fs::remove_dir(full(&path)).map_err(io_err)?;
                self.forget_path(&path);
            }
            Entry::Rename(from, to) => {
                std::fs::rename(full(&from), full(&to)).map_err(io_err)?;
                self.forget_path(&to);
                let moved: Vec<(PathBuf, u64)> = self
                    .by_path
                    .iter()
                    .filter(|(p, _)| p.starts_with(&from))
                    .map(|(p, &ino)| (p.clone(), ino))
                    .collect();
                for (old, ino) in moved {
                    self.by_path.remove(&old);
                    let rest = old.strip_prefix(&from).unwrap_or(Path::new(""));
                    let new = if rest.as_os_str().is_empty() {
                        to.clone()
                    } else {
                        to.join(rest)
                    };
                    if let Some(node) = self.nodes.get_mut(&ino) {
                        node.durable = Some(new.clone());
                        if let Kind::File(f) = &mut node.kind {
                            f.handle = None;
                        }
                    }
                    self.by_path.insert(new, ino);
                }
            }
        }
        Ok(())
    }

    /// A created node got its durable name.
    fn claim(&mut self, path: PathBuf, ino: u64) {
        if let Some(node) = self.nodes.get_mut(&ino) {
            node.durable = Some(path.clone());
            if let Kind::File(f) = &mut node.kind {
                f.durable_size = 0;
                f.trunc_to = 0;
                f.handle = None;
            }
        }
        self.by_path.insert(path, ino);
    }

    fn forget_path(&mut self, path: &Path) {
        let gone: Vec<PathBuf> = self
            .by_path
            .keys()
            .filter(|p| p.starts_with(path))
            .cloned()
            .collect();
        for p in gone {
            if let Some(ino) = self.by_path.remove(&p) {
                if let Some(node) = self.nodes.get_mut(&ino) {
                    node.durable = None;
                    if let Kind::File(f) = &mut node.kind {
                        f.handle = None;
                        f.durable_size = 0;
                        f.trunc_to = 0;
                    }
                }
            }
        }
    }

    /// `fsync` (`datasync`: `fdatasync`) of a file.
    pub(crate) fn fsync(&mut self, ino: u64, datasync: bool) -> Result<()> {
        match self.flush {
            Flush::Disk => self.flush_all()?,
            Flush::File => self.flush_file(ino)?,
        }
        let commit = match &self.node(ino)?.kind {
            Kind::File(f) => f.created || f.size_dirty() || (!datasync && f.meta_dirty),
            Kind::Dir(_) => self.dirty_dirs.contains(&ino),
        };
        if commit {
            self.commit()?;
        }
        self.flush_file(ino)
    }

    /// `fsync` of a directory.
    pub(crate) fn fsyncdir(&mut self, ino: u64) -> Result<()> {
        self.node(ino)?;
        if self.flush == Flush::Disk {
            self.flush_all()?;
        }
        if self.dirty_dirs.contains(&ino) {
            self.commit()?;
        }
        Ok(())
    }

    /// The power goes: in torn mode some unsynced pages (inside the
    /// durable size) reach the backing files first; then everything not
    /// durable is forgotten.
    pub(crate) fn cut(&mut self, torn: Option<u64>) -> io::Result<CutReport> {
        let mut report = CutReport {
            journal_entries_lost: self.journal.len(),
            ..CutReport::default()
        };
        let mut rng = torn.map(Rng::new);
        let backing = self.backing.clone();
        let mut inos: Vec<u64> = self.nodes.keys().copied().collect();
        inos.sort_unstable();
        for ino in inos {
            let Some(node) = self.nodes.get_mut(&ino) else {
                continue;
            };
            let Kind::File(f) = &node.kind else {
                continue;
            };
            if f.pages.is_empty() {
                continue;
            }
            let limit = f.limit();
            let pages: Vec<(u64, Vec<u8>)> = f.pages.iter().map(|(&i, p)| (i, p.clone())).collect();
            let file = match &mut rng {
                Some(_) => Self::backing_file(&backing, node)
                    .map_err(|e| io::Error::from_raw_os_error(e.code()))?,
                None => None,
            };
            for (index, page) in pages {
                let keep = rng.as_mut().is_some_and(|r| r.next() & 1 == 1);
                let start = index * PAGE;
                match (&file, keep && start < limit) {
                    (Some(file), true) => {
                        let n = (limit - start).min(PAGE) as usize;
                        file.write_all_at(&page[..n], start)?;
                        report.pages_kept += 1;
                    }
                    _ => report.pages_lost += 1,
                }
            }
        }
        self.reload()?;
        Ok(report)
    }
}

fn read_full(file: &File, buf: &mut [u8], offset: u64) -> io::Result<()> {
    let mut done = 0;
    while done < buf.len() {
        match file.read_at(&mut buf[done..], offset + done as u64)? {
            0 => break,
            n => done += n,
        }
    }
    Ok(())
}
