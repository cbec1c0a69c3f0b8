//! `Vm::array_words`, the allocation-free counter read-back: it agrees with `map_values`
//! after every run, writes only as many words as the map has entries, and refuses hash
//! maps and missing maps with typed errors. A counting allocator checks that reading the
//! counters allocates nothing and that a run allocates no more than rbpf's own stack.
mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use common::{ethernet, ipv4, ipv6, tcp, udp, words, TC_COUNT, XDP_COUNT};
use pfc_runtime::vm::{Vm, VmError};
use pfc_runtime::{BpfObject, MapType};

/// Counts this thread's allocations, so tests running in parallel do not disturb it.
struct Counting;

thread_local! {
    static ALLOCATIONS: Cell<usize> = const { Cell::new(0) };
}

// SAFETY: every call is forwarded unchanged to the system allocator; the counter is a
// const-initialised thread-local `Cell` without a destructor, so it never allocates.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.with(|count| count.set(count.get() + 1));
        // SAFETY: the caller upholds `alloc`'s contract, which `System` shares.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from `System.alloc` with this layout.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// How many allocations `f` made on this thread.
fn allocations_in(f: impl FnOnce()) -> usize {
    let before = ALLOCATIONS.with(Cell::get);
    f();
    ALLOCATIONS.with(Cell::get) - before
}

/// The first word of every value, the allocating way.
fn first_words(vm: &Vm<'_>, map: usize) -> Vec<u64> {
    vm.map_values(map).expect("map").iter().map(|value| words(value)[0]).collect()
}

#[test]
fn array_words_match_map_values_after_every_run() {
    let object = BpfObject::parse(XDP_COUNT).expect("fixture parses");
    let mut vm = Vm::new(&object).expect("vm");
    let packets = [
        ethernet(&[], 0x0800, &ipv4(6, 0, 0, &tcp(1, 2))),
        ethernet(&[], 0x86dd, &ipv6(17, false, &udp(1, 2, 3))),
        ethernet(&[], 0x0806, &[0; 100]),
        vec![1, 2, 3],
    ];
    let mut out = [u64::MAX; 3];
    for packet in packets.iter().cycle().take(11) {
        vm.run(packet).expect("runs");
        assert_eq!(vm.array_words(0, &mut out).expect("array"), 3);
        assert_eq!(out.to_vec(), first_words(&vm, 0));
    }
    assert_eq!(out, [3, 3, 5], "packets per class after 11 runs");
    vm.reset_maps();
    assert_eq!(vm.array_words(0, &mut out).expect("array"), 3);
    assert_eq!(out, [0, 0, 0]);
}

#[test]
fn array_words_writes_at_most_max_entries() {
    let object = BpfObject::parse(XDP_COUNT).expect("fixture parses");
    let mut vm = Vm::new(&object).expect("vm");
    vm.run(&ethernet(&[], 0x0800, &ipv4(6, 0, 0, &tcp(1, 2)))).expect("runs");
    let mut long = [7u64; 5];
    assert_eq!(vm.array_words(0, &mut long).expect("array"), 3);
    assert_eq!(long, [1, 0, 0, 7, 7], "words past the map's entries are left alone");
    let mut short = [7u64; 1];
    assert_eq!(vm.array_words(0, &mut short).expect("array"), 1);
    assert_eq!(short, [1]);
    assert_eq!(vm.array_words(0, &mut []).expect("array"), 0);
}

#[test]
fn short_values_are_zero_extended() {
    // tc_count's map 1 holds one u64 per verdict; map 0 two u32s (len, protocol).
    let object = BpfObject::parse(TC_COUNT).expect("fixture parses");
    let mut vm = Vm::new(&object).expect("vm");
    let web = ethernet(&[], 0x86dd, &ipv6(6, false, &tcp(1234, 80)));
    vm.run(&web).expect("runs");
    let mut out = [0u64; 2];
    let written = vm.array_words(1, &mut out).expect("array");
    assert_eq!(out[..written].to_vec(), first_words(&vm, 1));
    let mut out = [0u64; 1];
    vm.array_words(0, &mut out).expect("array");
    assert_eq!(out[0], first_words(&vm, 0)[0]);
    assert_eq!(out[0] & 0xffff_ffff, web.len() as u64, "skb->len in the low half");
}

#[test]
fn hash_maps_and_missing_maps_are_errors() {
    let object = BpfObject::parse(XDP_COUNT).expect("fixture parses");
    let vm = Vm::new(&object).expect("vm");
    assert!(matches!(vm.array_words(1, &mut [0; 3]), Err(VmError::NoSuchMap { map_index: 1, map_count: 1 })));
    let mut hashed = object.clone();
    hashed.maps[0].map_type = MapType::HASH;
    let vm = Vm::new(&hashed).expect("vm");
    let error = vm.array_words(0, &mut [0; 3]).expect_err("a hash map has no positions");
    assert!(matches!(error, VmError::NotAnArray { map_index: 0, map_type: MapType::HASH }), "{error:?}");
}

#[test]
fn reading_counters_allocates_nothing_and_a_run_only_rbpfs_stack() {
    let object = BpfObject::parse(XDP_COUNT).expect("fixture parses");
    let mut vm = Vm::new(&object).expect("vm");
    let packet = ethernet(&[], 0x0800, &ipv4(6, 0, 0, &tcp(1, 2)));
    let mut out = [0u64; 3];
    vm.run(&packet).expect("warm-up run");
    assert_eq!(allocations_in(|| assert_eq!(vm.array_words(0, &mut out).expect("array"), 3)), 0);
    // rbpf 0.4.1 allocates its 512-byte stack per `execute_program`; the map helpers
    // (this program looks its counter up once per packet) add nothing.
    let per_run = allocations_in(|| assert_eq!(vm.run(&packet).expect("runs").return_value, 2));
    assert!(per_run <= 1, "a run allocated {per_run} times");
    assert!(allocations_in(|| drop(vm.map_values(0).expect("map"))) > 0, "the counter works");
}
