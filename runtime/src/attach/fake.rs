//! A fake [`BpfSys`] for unit tests: "pins" are ordinary files in a temp directory that
//! name a fake object (`prog 3`, `map 4`, `link 5`), and the fake kernel keeps programs,
//! counter maps and links in memory. An object's length is its number of counters.

use std::cell::RefCell;
use std::collections::HashMap;
use std::io;
use std::path::{Path, PathBuf};

use super::{AttachError, BpfSys, Counter, Existing, LinkInfo, MapInfo, ProgInfo};
use crate::kernel::KernelError;
use crate::pins::{AttachMode, Hook, Layout};

/// A link in the fake kernel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FakeLink {
    pub prog: u32,
    pub ifindex: u32,
    pub point: Hook,
    pub mode: AttachMode,
    pub detached: bool,
}

/// The fake kernel's state; tests poke at it directly.
#[derive(Debug, Default)]
pub struct FakeState {
    next_id: u32,
    pub interfaces: Vec<(String, u32)>,
    /// Non-pfc XDP programs by interface index.
    pub foreign_xdp: HashMap<u32, u32>,
    /// Whether drivers support native XDP.
    pub native_ok: bool,
    /// The next load fails in the verifier.
    pub reject_load: bool,
    /// Mounting bpffs fails with this errno.
    pub bpffs_errno: Option<i32>,
    /// Whether bpffs is mounted.
    pub bpffs_mounted: bool,
    /// Whether this process shares init's mount namespace.
    pub init_mount_namespace: Option<bool>,
    /// Loading programs is not allowed.
    pub unprivileged: bool,
    /// Packets the old program counts (at counter 0) after a swap, until the grace period.
    pub late_packets: u64,
    /// Grace periods waited for.
    pub synchronized: u32,
    /// The next link update fails.
    pub fail_update: bool,
    /// Program id → its counter map id.
    pub progs: HashMap<u32, u32>,
    /// Map id → counters.
    pub maps: HashMap<u32, Vec<Counter>>,
    /// Link id → link.
    pub links: HashMap<u32, FakeLink>,
}

/// The fake kernel plus a temp directory for its pins and state records.
#[derive(Debug)]
pub struct FakeSys {
    pub state: RefCell<FakeState>,
    pub root: PathBuf,
}

impl FakeSys {
    /// A fake with interfaces `lo` (1) and `eth0` (2), in a fresh temp directory.
    pub fn new(test: &str) -> FakeSys {
        let root = std::env::temp_dir().join(format!("pfc-fake-{}-{test}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        std::fs::create_dir_all(root.join("bpffs")).expect("temp dir");
        let state = FakeState {
            interfaces: vec![("lo".to_string(), 1), ("eth0".to_string(), 2)],
            native_ok: true,
            bpffs_mounted: true,
            init_mount_namespace: Some(true),
            ..FakeState::default()
        };
        FakeSys { state: RefCell::new(state), root }
    }

    /// The layout under the temp directory.
    pub fn layout(&self) -> Layout {
        // Like the default layout, pfc may mount the fake bpffs when it is "missing".
        Layout { may_mount: true, ..Layout::new(Some(self.root.join("bpffs")), Some(self.root.join("run"))) }
    }

    /// The links attached (not detached) to an interface at a point.
    pub fn attached(&self, ifindex: u32, point: Hook) -> Vec<FakeLink> {
        let state = self.state.borrow();
        state.links.values().filter(|l| !l.detached && l.ifindex == ifindex && l.point == point).copied().collect()
    }

    fn id(&self) -> u32 {
        let mut state = self.state.borrow_mut();
        state.next_id += 1;
        state.next_id
    }
}

impl Drop for FakeSys {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

/// The id a fake pin names, checking its kind.
pub fn read_pin(path: &Path, kind: &str) -> io::Result<u32> {
    let text = std::fs::read_to_string(path)?;
    let (found, id) = text.split_once(' ').ok_or(io::ErrorKind::InvalidData)?;
    if found != kind {
        return Err(io::ErrorKind::InvalidData.into());
    }
    id.parse().map_err(|_| io::ErrorKind::InvalidData.into())
}

fn write_pin(path: &Path, kind: &str, id: u32) -> io::Result<()> {
    if path.exists() {
        return Err(io::ErrorKind::AlreadyExists.into());
    }
    std::fs::write(path, format!("{kind} {id}"))
}

impl BpfSys for &FakeSys {
    fn interfaces(&self) -> io::Result<Vec<(String, u32)>> {
        Ok(self.state.borrow().interfaces.clone())
    }

    fn is_bpffs(&self, path: &Path) -> io::Result<bool> {
        Ok(self.state.borrow().bpffs_mounted && path.is_dir())
    }

    fn mount_bpffs(&self, mount_point: &Path) -> io::Result<()> {
        if let Some(errno) = self.state.borrow().bpffs_errno {
            return Err(io::Error::from_raw_os_error(errno));
        }
        self.state.borrow_mut().bpffs_mounted = true;
        std::fs::create_dir_all(mount_point)
    }

    fn in_init_mount_namespace(&self) -> Option<bool> {
        self.state.borrow().init_mount_namespace
    }

    fn may_load(&self) -> io::Result<()> {
        if self.state.borrow().unprivileged {
            return Err(io::Error::from_raw_os_error(libc::EPERM));
        }
        Ok(())
    }

    fn xdp_program(&self, ifindex: u32) -> io::Result<Option<u32>> {
        let foreign = self.state.borrow().foreign_xdp.get(&ifindex).copied();
        Ok(foreign.or_else(|| self.attached(ifindex, Hook::Xdp).first().map(|link| link.prog)))
    }

    fn detach_xdp(&self, ifindex: u32) -> io::Result<()> {
        self.state.borrow_mut().foreign_xdp.remove(&ifindex);
        Ok(())
    }

    fn load_and_pin(&self, object: &[u8], prog_pin: &Path, counters_pin: &Path) -> Result<(), AttachError> {
        if std::mem::take(&mut self.state.borrow_mut().reject_load) {
            let source = KernelError::Load {
                program: "pfc_filter".to_string(),
                log: "R1 invalid mem access 'scalar'".to_string(),
                source: io::Error::from_raw_os_error(libc::EACCES),
            };
            return Err(AttachError::Verifier { source });
        }
        let (prog, map) = (self.id(), self.id());
        let mut state = self.state.borrow_mut();
        state.progs.insert(prog, map);
        state.maps.insert(map, vec![Counter::default(); object.len()]);
        drop(state);
        let pin_error = |path: &Path| {
            let path = path.to_path_buf();
            move |source| AttachError::Pin { path, source }
        };
        write_pin(prog_pin, "prog", prog).map_err(pin_error(prog_pin))?;
        write_pin(counters_pin, "map", map).map_err(pin_error(counters_pin))
    }

    fn attach(&self, prog_pin: &Path, ifindex: u32, point: Hook, mode: AttachMode, link_pin: &Path) -> io::Result<()> {
        let prog = read_pin(prog_pin, "prog")?;
        if mode == AttachMode::Native && !self.state.borrow().native_ok {
            return Err(io::Error::from_raw_os_error(libc::EOPNOTSUPP));
        }
        if point == Hook::Xdp && self.xdp_program(ifindex)?.is_some() {
            return Err(io::Error::from_raw_os_error(libc::EBUSY));
        }
        let link = self.id();
        self.state.borrow_mut().links.insert(link, FakeLink { prog, ifindex, point, mode, detached: false });
        write_pin(link_pin, "link", link)
    }

    fn update_link(&self, link_pin: &Path, new_prog_pin: &Path, old: u32) -> io::Result<()> {
        let (link, new) = (read_pin(link_pin, "link")?, read_pin(new_prog_pin, "prog")?);
        let mut state = self.state.borrow_mut();
        if std::mem::take(&mut state.fail_update) {
            return Err(io::Error::from_raw_os_error(libc::EINVAL));
        }
        let link = state.links.get_mut(&link).ok_or(io::ErrorKind::NotFound)?;
        if link.prog != old {
            return Err(io::Error::from_raw_os_error(libc::EPERM));
        }
        link.prog = new;
        // The old program keeps running on other CPUs until the grace period.
        let late = state.late_packets;
        let old_map = state.progs[&old];
        state.maps.get_mut(&old_map).expect("old map")[0].packets += late;
        Ok(())
    }

    fn link(&self, link_pin: &Path) -> io::Result<LinkInfo> {
        let id = read_pin(link_pin, "link")?;
        let link = *self.state.borrow().links.get(&id).ok_or(io::ErrorKind::NotFound)?;
        Ok(LinkInfo { id, prog_id: link.prog, ifindex: if link.detached { 0 } else { link.ifindex } })
    }

    fn detach_link(&self, link_pin: &Path) -> io::Result<()> {
        let id = read_pin(link_pin, "link")?;
        let mut state = self.state.borrow_mut();
        let link = state.links.get_mut(&id).ok_or(io::ErrorKind::NotFound)?;
        link.detached = true;
        Ok(())
    }

    fn prog_id(&self, prog_pin: &Path) -> io::Result<u32> {
        read_pin(prog_pin, "prog")
    }

    fn map_id(&self, map_pin: &Path) -> io::Result<u32> {
        read_pin(map_pin, "map")
    }

    fn prog(&self, prog_id: u32) -> io::Result<ProgInfo> {
        let state = self.state.borrow();
        let map = *state.progs.get(&prog_id).ok_or(io::ErrorKind::NotFound)?;
        let entries = state.maps.get(&map).map(|counters| counters.len() as u32);
        Ok(ProgInfo {
            id: prog_id,
            tag: [prog_id as u8; 8],
            counters: entries.map(|entries| MapInfo { id: map, entries }),
        })
    }

    fn pin_prog(&self, prog_id: u32, path: &Path) -> io::Result<()> {
        self.state.borrow().progs.get(&prog_id).ok_or(io::ErrorKind::NotFound)?;
        write_pin(path, "prog", prog_id)
    }

    fn pin_map(&self, map_id: u32, path: &Path) -> io::Result<()> {
        self.state.borrow().maps.get(&map_id).ok_or(io::ErrorKind::NotFound)?;
        write_pin(path, "map", map_id)
    }

    fn synchronize(&self) -> io::Result<()> {
        self.state.borrow_mut().synchronized += 1;
        Ok(())
    }

    fn read_counters(&self, map_id: u32) -> io::Result<Vec<Counter>> {
        self.state.borrow().maps.get(&map_id).cloned().ok_or(io::ErrorKind::NotFound.into())
    }

    fn copy_map(&self, _from_map_id: u32, _to_map_id: u32) -> io::Result<usize> {
        Ok(0) // the fake kernel has no rate-limit maps
    }

    fn limit_maps(&self, _prog_id: u32) -> io::Result<Vec<(String, u32)>> {
        Ok(Vec::new())
    }

    fn set_maps(&self, _prog_id: u32) -> io::Result<Vec<(String, u32)>> {
        Ok(Vec::new()) // the fake kernel has no dynamic-set maps
    }

    fn log_maps(&self, _prog_id: u32) -> io::Result<Vec<(String, u32)>> {
        Ok(Vec::new()) // the fake kernel's programs do not log
    }

    fn write_entries(&self, _map_id: u32, _keys: &[u8], _value: &[u8], _existing: Existing) -> io::Result<usize> {
        Err(io::ErrorKind::NotFound.into())
    }

    fn table_maps(&self, _prog_id: u32) -> io::Result<Vec<(String, u32)>> {
        Ok(Vec::new()) // the fake kernel's programs have no classifier tables
    }

    fn write_values(&self, _map_id: u32, _values: &[u8]) -> io::Result<usize> {
        Err(io::ErrorKind::NotFound.into())
    }

    fn delete_keys(&self, _map_id: u32, _keys: &[u8]) -> io::Result<usize> {
        Err(io::ErrorKind::NotFound.into())
    }

    fn read_keys(&self, _map_id: u32) -> io::Result<Vec<u8>> {
        Err(io::ErrorKind::NotFound.into())
    }

    fn lookup(&self, _map_id: u32, _key: &[u8]) -> io::Result<Option<Vec<u8>>> {
        Err(io::ErrorKind::NotFound.into())
    }

    fn add_counters(&self, map_pin: &Path, additions: &[(u32, Counter)]) -> io::Result<()> {
        let id = read_pin(map_pin, "map")?;
        let mut state = self.state.borrow_mut();
        let map = state.maps.get_mut(&id).ok_or(io::ErrorKind::NotFound)?;
        for (index, amount) in additions {
            let counter = map.get_mut(*index as usize).ok_or(io::ErrorKind::InvalidInput)?;
            counter.packets += amount.packets;
            counter.bytes += amount.bytes;
        }
        Ok(())
    }
}
