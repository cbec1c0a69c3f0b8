//! A loaded program's log ring buffer, read live: a map id in, the records the program
//! wrote out, in order (libbpf's ring buffer consumer, `ring_buffer__poll`). Used by
//! `pfc watch`; no libbpf type leaves this module.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::io;
use std::rc::Rc;
use std::time::Duration;

use libbpf_rs::{MapCore, MapHandle, MapType, RingBuffer, RingBufferBuilder};

/// A ring buffer map opened for reading. Reading consumes: a record read here is gone
/// for every other reader of the same map.
pub struct LogRing {
    // Fields drop in order: the consumer before the map it reads.
    ring: RingBuffer<'static>,
    _map: MapHandle,
    records: Rc<RefCell<VecDeque<Vec<u8>>>>,
}

impl std::fmt::Debug for LogRing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LogRing").field("pending", &self.records.borrow().len()).finish()
    }
}

fn libbpf_error(error: libbpf_rs::Error) -> io::Error {
    crate::kernel::to_io(&error)
}

impl LogRing {
    /// Opens the ring buffer map with this id (`pfc_log_ring` of a running program).
    pub fn open(map_id: u32) -> io::Result<LogRing> {
        let map = MapHandle::from_map_id(map_id).map_err(libbpf_error)?;
        if map.map_type() != MapType::RingBuf {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, format!("map {map_id} is not a ring buffer")));
        }
        let records = Rc::new(RefCell::new(VecDeque::new()));
        let sink = records.clone();
        let mut builder = RingBufferBuilder::new();
        builder
            .add(&map, move |record: &[u8]| {
                sink.borrow_mut().push_back(record.to_vec());
                0
            })
            .map_err(libbpf_error)?;
        let ring = builder.build().map_err(libbpf_error)?;
        Ok(LogRing { ring, _map: map, records })
    }

    /// Waits up to `timeout` for records and returns those there are (maybe none). A
    /// signal that interrupts the wait returns what was read so far, so a caller that
    /// checks a stop flag after each call ends promptly.
    pub fn poll(&mut self, timeout: Duration) -> io::Result<Vec<Vec<u8>>> {
        let rc = self.ring.poll_raw(timeout);
        if rc < 0 && -rc != libc::EINTR {
            return Err(io::Error::from_raw_os_error(-rc));
        }
        Ok(self.records.borrow_mut().drain(..).collect())
    }

    /// Every record there is now, without waiting.
    pub fn drain(&mut self) -> io::Result<Vec<Vec<u8>>> {
        let rc = self.ring.consume_raw();
        if rc < 0 && -rc != libc::EINTR {
            return Err(io::Error::from_raw_os_error(-rc));
        }
        Ok(self.records.borrow_mut().drain(..).collect())
    }
}
