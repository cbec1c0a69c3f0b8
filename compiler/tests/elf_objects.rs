//! pfc-written ELF objects in, the real kernel's verdict out: each object is loaded
//! with `bpftool prog load`, run with `bpftool prog run` (BPF_PROG_TEST_RUN), its BTF
//! parsed by `bpftool btf dump file`, and attached with `ip link … xdpgeneric obj` or
//! `tc filter … bpf obj` inside a network namespace created for the test.
//!
//! Skips (prints `skipped: <reason>` and passes, `pfc_test_support::skip_unless!`) when
//! this process cannot load BPF programs, when `bpftool`/`ip`
//! are missing, or when bpffs cannot be mounted. Everything created (temp files,
//! pins, namespaces) is removed by guards, also when an assertion fails.

#[macro_use]
extern crate pfc_test_support;

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use pfc_compiler::bpf::{AluOp, ByteOrder, EndianWidth, Insn, JmpOp, Program, ProgramBuilder, Reg::*, Size};
use pfc_compiler::object::maps::COUNTER_MAP_NAME;
use pfc_compiler::object::{write_object, MapSpec, ObjectSpec, ProgramType, Verdict};
use pfc_test_support::{missing_tool, no_kernel, run, run_ok, NetNs, RemoveOnDrop};
use serde_json::Value;

const BPFFS: &str = "/sys/fs/bpf";

fn json(program: &str, args: &[&str]) -> Value {
    let text = run_ok(program, args);
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{program} {args:?}: {e}: {text}"))
}

/// Why the kernel tests cannot run here, if they cannot; checked (and bpffs mounted)
/// once per test binary, since the tests run in parallel.
fn skip_reason() -> Option<String> {
    static REASON: OnceLock<Option<String>> = OnceLock::new();
    REASON.get_or_init(find_skip_reason).clone()
}

fn find_skip_reason() -> Option<String> {
    no_kernel().or_else(|| missing_tool(&[("bpftool", "version"), ("ip", "-V")])).or_else(|| {
        let mounted = std::fs::read_to_string("/proc/mounts")
            .map(|m| m.lines().any(|l| l.contains(&format!(" {BPFFS} bpf "))))
            .unwrap_or(false);
        let mount = || run("mount", &["-t", "bpf", "bpf", BPFFS]).err();
        if mounted {
            None
        } else {
            mount().map(|e| format!("bpffs not mounted and cannot be mounted: {e}"))
        }
    })
}

/// A network namespace for `test`, unique to this process.
fn netns(test: &str) -> NetNs {
    NetNs::new(format!("pfc-elf-{}-{test}", std::process::id()))
}

/// Writes `spec` to a temporary `.o` file.
fn write_temp(spec: &ObjectSpec, test: &str) -> RemoveOnDrop {
    let bytes = write_object(spec).expect("object is written");
    let path = std::env::temp_dir().join(format!("pfc-elf-{}-{test}.o", std::process::id()));
    std::fs::write(&path, bytes).expect("temp file is written");
    RemoveOnDrop(path)
}

/// `bpftool prog load OBJ PIN type TYPE`; the pin is removed on drop.
fn load_pinned(object: &Path, prog_type: &str, test: &str) -> RemoveOnDrop {
    let pin = PathBuf::from(format!("{BPFFS}/pfc-test-{}-{test}", std::process::id()));
    let _ = std::fs::remove_file(&pin);
    let args = [path_str(object), path_str(&pin), "type", prog_type];
    run_ok("bpftool", &["prog", "load", args[0], args[1], args[2], args[3]]);
    RemoveOnDrop(pin)
}

fn path_str(path: &Path) -> &str {
    path.to_str().expect("utf-8 path")
}

fn spec(program_type: ProgramType, function: &str, program: &Program, maps: Vec<MapSpec>) -> ObjectSpec {
    ObjectSpec {
        program_type,
        function: function.to_string(),
        code: program.encode(),
        relocations: program.map_relocations(),
        maps,
        manifest: br#"{"pfc":"0.1.0","hook":"xdp","rules":["v6"]}"#.to_vec(),
        set_contents: Vec::new(),
    }
}

/// (a) `r0 = XDP_PASS; exit`.
fn xdp_pass() -> Program {
    let mut b = ProgramBuilder::new();
    b.emit(Insn::mov64(R0, 2));
    b.emit(Insn::Exit);
    b.finish().expect("assembles")
}

/// (b)/(c) Drops IPv6 (ethertype 0x86dd), passes the rest; counts every frame of at
/// least 14 bytes in the per-CPU `pfc_counter` at index 0 (packets += 1,
/// bytes += frame length).
fn counting_filter(ty: ProgramType) -> Program {
    let (context, pass, drop) = (ty.context(), ty.return_code(Verdict::Pass), ty.return_code(Verdict::Drop));
    let mut b = ProgramBuilder::new();
    let out = b.new_label();
    let verdict = b.new_label();
    b.comment("bounds check: 14 bytes of Ethernet");
    b.emit(Insn::mov64(R0, pass));
    b.emit(Insn::load(Size::W, R2, R1, context.data));
    b.emit(Insn::load(Size::W, R3, R1, context.data_end));
    b.emit(Insn::mov64(R4, R2));
    b.alu64(AluOp::Add, R4, 14);
    b.emit(Insn::jump64(JmpOp::Gt, R4, R3, out));
    b.emit(Insn::load(Size::H, R7, R2, 12));
    b.emit(Insn::mov64(R8, R3));
    b.alu64(AluOp::Sub, R8, R2);
    b.comment("counters[0]");
    b.emit(Insn::StoreImm { size: Size::W, dst: R10, off: -4, imm: 0 });
    b.emit(Insn::mov64(R2, R10));
    b.alu64(AluOp::Add, R2, -4);
    b.emit(Insn::LoadMapIndex { dst: R1, map: 0 });
    b.emit(Insn::Call { helper: 1 });
    b.emit(Insn::jump64(JmpOp::Eq, R0, 0, verdict));
    b.emit(Insn::load(Size::DW, R1, R0, 0));
    b.alu64(AluOp::Add, R1, 1);
    b.emit(Insn::store(Size::DW, R0, 0, R1));
    b.emit(Insn::load(Size::DW, R1, R0, 8));
    b.alu64(AluOp::Add, R1, R8);
    b.emit(Insn::store(Size::DW, R0, 8, R1));
    b.bind(verdict);
    b.comment("rule v6: drop if eth.type == 0x86dd");
    b.emit(Insn::mov64(R0, pass));
    b.emit(Insn::Endian { order: ByteOrder::Big, width: EndianWidth::W16, dst: R7 });
    b.emit(Insn::jump32(JmpOp::Ne, R7, 0x86dd, out));
    b.emit(Insn::mov64(R0, drop));
    b.bind(out);
    b.emit(Insn::Exit);
    b.finish().expect("assembles")
}

/// A frame of `len` bytes with the given ethertype.
fn frame(ethertype: u16, len: usize) -> Vec<u8> {
    let mut f = vec![0u8; len];
    f[..6].copy_from_slice(&[0x02, 0, 0, 0, 0, 1]);
    f[12..14].copy_from_slice(&ethertype.to_be_bytes());
    f
}

/// Runs the pinned program once on `data` (BPF_PROG_TEST_RUN); its return value.
fn test_run(pin: &Path, data: &[u8], test: &str) -> u64 {
    let input = std::env::temp_dir().join(format!("pfc-elf-{}-{test}.pkt", std::process::id()));
    std::fs::write(&input, data).expect("packet file");
    let input = RemoveOnDrop(input);
    let result = json("bpftool", &["--json", "prog", "run", "pinned", path_str(pin), "data_in", path_str(&input.0)]);
    result["retval"].as_u64().expect("retval")
}

/// The one map id of a loaded program, checking its name and type.
fn counter_map_id(prog: &Value) -> u64 {
    let ids = prog["map_ids"].as_array().expect("map_ids");
    assert_eq!(ids.len(), 1, "{prog}");
    let id = ids[0].as_u64().expect("map id");
    let map = json("bpftool", &["--json", "map", "show", "id", &id.to_string()]);
    assert_eq!(map["name"], COUNTER_MAP_NAME);
    assert_eq!(map["type"], "percpu_array");
    assert_eq!((map["bytes_key"].as_u64(), map["bytes_value"].as_u64()), (Some(4), Some(16)));
    assert_eq!(map["max_entries"], 4);
    assert!(map["btf_id"].is_u64(), "the kernel accepted the map's BTF: {map}");
    id
}

/// Sums `(packets, bytes)` of entry 0 over all CPUs, from bpftool's BTF-formatted dump.
fn counter_totals(map_id: u64) -> (u64, u64) {
    let dump = json("bpftool", &["--json", "map", "dump", "id", &map_id.to_string()]);
    let entry = &dump.as_array().expect("entries")[0]["formatted"];
    assert_eq!(entry["key"], 0, "{dump}");
    let values = entry["values"].as_array().expect("per-CPU values");
    values.iter().fold((0, 0), |(p, b), v| {
        let value = &v["value"];
        (p + value["packets"].as_u64().expect("packets"), b + value["bytes"].as_u64().expect("bytes"))
    })
}

/// Finds `"prog": {"id": N}` anywhere in `ip`/`tc` JSON output.
fn find_prog_id(value: &Value) -> Option<u64> {
    match value {
        Value::Object(map) => {
            map.get("prog").and_then(|p| p["id"].as_u64()).or_else(|| map.values().find_map(find_prog_id))
        }
        Value::Array(items) => items.iter().find_map(find_prog_id),
        _ => None,
    }
}

#[test]
fn xdp_pass_loads_and_attaches() {
    skip_unless!(skip_reason());
    let object = write_temp(&spec(ProgramType::Xdp, "pfc_pass", &xdp_pass(), vec![]), "pass");
    let pin = load_pinned(&object.0, "xdp", "pass");
    let prog = json("bpftool", &["--json", "prog", "show", "pinned", path_str(&pin.0)]);
    assert_eq!((prog["type"].as_str(), prog["name"].as_str()), (Some("xdp"), Some("pfc_pass")));
    assert_eq!(test_run(&pin.0, &frame(0x0800, 60), "pass"), 2);

    let ns = netns("pass");
    run_ok("ip", &["-n", &ns.0, "link", "set", "dev", "lo", "xdpgeneric", "obj", path_str(&object.0), "sec", "xdp"]);
    let link = json("ip", &["-n", &ns.0, "-j", "link", "show", "dev", "lo"]);
    assert!(find_prog_id(&link).is_some(), "no XDP program on lo: {link}");
}

#[test]
fn xdp_counter_loads_runs_and_counts() {
    skip_unless!(skip_reason());
    let program = counting_filter(ProgramType::Xdp);
    let maps = vec![MapSpec::counters(COUNTER_MAP_NAME, 4)];
    let object = write_temp(&spec(ProgramType::Xdp, "pfc_xdp", &program, maps), "xdp");

    let btf = run_ok("bpftool", &["btf", "dump", "file", path_str(&object.0)]);
    let var = format!("VAR '{COUNTER_MAP_NAME}'");
    for expected in ["STRUCT 'pfc_counter' size=16 vlen=2", &var, "DATASEC '.maps' size=32 vlen=1"] {
        assert!(btf.contains(expected), "{expected:?} missing from:\n{btf}");
    }

    let pin = load_pinned(&object.0, "xdp", "xdp");
    let prog = json("bpftool", &["--json", "prog", "show", "pinned", path_str(&pin.0)]);
    assert_eq!((prog["type"].as_str(), prog["name"].as_str()), (Some("xdp"), Some("pfc_xdp")));
    let map_id = counter_map_id(&prog);

    assert_eq!(test_run(&pin.0, &frame(0x86dd, 80), "xdp"), 1, "IPv6 is dropped");
    assert_eq!(test_run(&pin.0, &frame(0x0800, 60), "xdp"), 2, "IPv4 passes");
    assert_eq!(counter_totals(map_id), (2, 140));

    let ns = netns("xdp");
    run_ok("ip", &["-n", &ns.0, "link", "set", "dev", "lo", "xdpgeneric", "obj", path_str(&object.0), "sec", "xdp"]);
    let link = json("ip", &["-n", &ns.0, "-j", "link", "show", "dev", "lo"]);
    let id = find_prog_id(&link).unwrap_or_else(|| panic!("no XDP program on lo: {link}"));
    let attached = json("bpftool", &["--json", "prog", "show", "id", &id.to_string()]);
    assert_eq!(attached["name"], "pfc_xdp");
    counter_map_id(&attached);
}

#[test]
fn tc_counter_loads_runs_and_attaches() {
    skip_unless!(skip_reason());
    let program = counting_filter(ProgramType::SchedCls);
    let maps = vec![MapSpec::counters(COUNTER_MAP_NAME, 4)];
    let object = write_temp(&spec(ProgramType::SchedCls, "pfc_tc", &program, maps), "tc");
    let pin = load_pinned(&object.0, "tc", "tc");
    let prog = json("bpftool", &["--json", "prog", "show", "pinned", path_str(&pin.0)]);
    assert_eq!((prog["type"].as_str(), prog["name"].as_str()), (Some("sched_cls"), Some("pfc_tc")));
    let map_id = counter_map_id(&prog);
    assert_eq!(test_run(&pin.0, &frame(0x86dd, 80), "tc"), 2, "IPv6 is shot");
    assert_eq!(test_run(&pin.0, &frame(0x0800, 60), "tc"), 0, "IPv4 is ok");
    assert_eq!(counter_totals(map_id), (2, 140));

    if run("tc", &["-V"]).is_err() {
        println!("skipped: tc attach (`tc` unavailable)");
        return;
    }
    let ns = netns("tc");
    run_ok("tc", &["-n", &ns.0, "qdisc", "add", "dev", "lo", "clsact"]);
    run_ok(
        "tc",
        &[
            "-n",
            &ns.0,
            "filter",
            "add",
            "dev",
            "lo",
            "ingress",
            "bpf",
            "direct-action",
            "obj",
            path_str(&object.0),
            "sec",
            "tc",
        ],
    );
    let filters = json("tc", &["-n", &ns.0, "-j", "filter", "show", "dev", "lo", "ingress"]);
    assert!(find_prog_id(&filters).is_some(), "no tc program on lo: {filters}");
}
