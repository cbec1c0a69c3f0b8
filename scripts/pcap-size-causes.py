#!/usr/bin/env python3
"""Where pfc's pcap atom code is larger than libpcap's optimized classic BPF, by cause.

Not needed to build or test pfc: a developer's tool for issue 17's code-size work.

Usage:
  PFC_PCAP_SIZE_LIST=1 cargo test --release --test pcap_libpcap pcap_code_size_against_libpcap \\
      -- --nocapture > sizes.txt
  scripts/pcap-size-causes.py [--set 'random expressions'] [--show N] sizes.txt

It reads the `size\\tPFC\\tLIBPCAP\\tEXPR` lines of one set, compiles each expression with
`pfc compile --pcap-filter EXPR --emit asm` (PFC=path, default target/release/pfc) and
with libpcap (`pcap_compile` optimized, through a small C program built here with
`cc -lpcap`), classifies every instruction of pfc's atom (bounds checks, the IPv4 header
length, loads, jumps, gotos, acceptance and join, ALU) and every libpcap opcode, and
prints the totals side by side. `--show N` prints N expressions' two programs next to
each other, largest excess first.
"""
import argparse, collections, os, re, subprocess, sys, tempfile
from concurrent.futures import ThreadPoolExecutor

DUMP_C = r"""
#include <pcap/pcap.h>
#include <stdio.h>
#include <string.h>
int main(void) {
    pcap_t *p = pcap_open_dead(DLT_EN10MB, 262144);
    static char line[65536];
    while (fgets(line, sizeof line, stdin)) {
        struct bpf_program prog;
        line[strcspn(line, "\n")] = 0;
        printf("=== %s\n", line);
        if (pcap_compile(p, &prog, line, 1, PCAP_NETMASK_UNKNOWN) < 0) {
            printf("ERR %s\n", pcap_geterr(p));
            continue;
        }
        for (unsigned i = 0; i < prog.bf_len; i++)
            printf("%s\n", bpf_image(&prog.bf_insns[i], i));
        pcap_freecode(&prog);
    }
    return 0;
}
"""


def libpcap_programs(exprs):
    with tempfile.TemporaryDirectory() as tmp:
        src, exe = os.path.join(tmp, "dump.c"), os.path.join(tmp, "dump")
        with open(src, "w") as f:
            f.write(DUMP_C)
        subprocess.run(["cc", "-O1", src, "-lpcap", "-o", exe], check=True)
        out = subprocess.run([exe], input="\n".join(exprs) + "\n", capture_output=True, text=True, check=True).stdout
    programs, current = {}, None
    for line in out.split("\n"):
        if line.startswith("=== "):
            current = line[4:]
            programs[current] = []
        elif line and current is not None:
            programs[current].append(line)
    return programs


def pfc_atom(pfc, expr):
    """The atom's instructions (labels as 'L..:'), from the atom's comment to its join."""
    out = subprocess.run([pfc, "compile", "--pcap-filter", expr, "--emit", "asm", "-o", os.devnull],
                         capture_output=True, text=True).stdout
    atom, inside = [], False
    for line in out.split("\n"):
        if "; pcap atom" in line:
            inside = True
        elif inside and line.strip().startswith("; "):
            break
        elif inside:
            m = re.match(r"\s*\d+: (.*)$", line)
            if m:
                atom.append(m.group(1).strip())
            elif re.match(r"\s*L\d+:$", line):
                atom.append(line.strip())
    # The atom ends at its join: the context's packet start read again, or (when the
    # ethernet check came before the atom and nothing after reads r7) the absent mask
    # set for the parse after it.
    for i, insn in enumerate(atom):
        if re.match(r"r7 = \*\(u32 \*\)\(r\d \+ 0\)$", insn):
            return atom[: i + 1]
        if re.match(r"w9 = \d+$", insn):
            return atom[:i]
    return []  # a constant atom: no code


def pfc_causes(atom):
    code = [i for i in atom if not i.endswith(":")]
    causes, i = [], 0
    while i < len(code):
        s = code[i]
        m = re.match(r"(r\d) = r7$", s)
        if m and i + 2 < len(code) and re.match(m.group(1) + r" \+= \d+$", code[i + 1]) \
                and code[i + 2].startswith(f"if {m.group(1)} > r8"):
            causes += ["bounds check (first, 3)"] * 3
            i += 3
            continue
        m = re.match(r"(r\d) \+= \d+$", s)
        if m and i + 1 < len(code) and code[i + 1].startswith(f"if {m.group(1)} > r8"):
            causes += ["bounds check (next, 2)"] * 2
            i += 2
            continue
        m = re.match(r"r(\d) = \*\(u8 \*\)\(r7 \+ \d+\)$", s)
        if m and i + 2 < len(code) and code[i + 1] == f"w{m.group(1)} &= 15" and code[i + 2] == f"w{m.group(1)} *= 4":
            causes += ["IPv4 header length"] * 3 + ["IPv4 header length computed"]
            i += 3
            continue
        if re.match(r"if r\d > r8", s):
            kind = "bounds check (other)"
        elif re.match(r"r\d \+= r7$", s):
            kind = "IPv4 header length"  # the pointer at a variable offset
        elif re.match(r"if r\d > (\d+) goto", s) and int(re.findall(r"> (\d+)", s)[0]) > 60000:
            kind = "index bound"
        elif "= *(u" in s and "(r10" not in s and not re.match(r"r7 = ", s):
            kind = "load"
        elif s.startswith("*(u32 *)(r10") or s.startswith("r0 = *(u32 *)(r10") or re.match(r"w0 \|= ", s):
            kind = "acceptance and join"
        elif re.match(r"r7 = \*\(u32 \*\)", s):
            kind = "acceptance and join"
        elif s.startswith("if "):
            kind = "conditional jump"
        elif s.startswith("goto"):
            kind = "goto"
        else:
            kind = "ALU, swap, constant, move"
        causes.append(kind)
        i += 1
    return causes


def libpcap_causes(program):
    if program and program[0].startswith("ERR"):
        return ["acceptance and join"]  # "rejects all packets": one ret
    causes = []
    for line in program:
        op = line.split()[1]
        if op == "ldxb":
            causes.append("IPv4 header length")
        elif op.startswith("ld"):
            causes.append("load")
        elif op in ("ja", "jmp"):
            causes.append("goto")
        elif op.startswith("j"):
            causes.append("conditional jump")
        elif op == "ret":
            causes.append("acceptance and join")
        else:
            causes.append("ALU, swap, constant, move")
    return causes


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("sizes")
    parser.add_argument("--set", default="random expressions")
    parser.add_argument("--show", type=int, default=0)
    args = parser.parse_args()
    pfc = os.environ.get("PFC", "target/release/pfc")
    rows, current = [], None
    for line in open(args.sizes):
        if not line.startswith("size\t") and line.rstrip().endswith(":"):
            current = line.rstrip()[:-1]
        elif line.startswith("size\t") and current == args.set:
            _, _, _, expr = line.rstrip("\n").split("\t", 3)
            rows.append(expr)
    if not rows:
        sys.exit(f"no `size` lines of the set `{args.set}` (run the test with PFC_PCAP_SIZE_LIST=1)")
    with ThreadPoolExecutor(os.cpu_count() or 2) as pool:
        atoms = list(pool.map(lambda e: pfc_atom(pfc, e), rows))
    programs = libpcap_programs(rows)
    ours, theirs = collections.Counter(), collections.Counter()
    for expr, atom in zip(rows, atoms):
        ours.update(pfc_causes(atom))
        theirs.update(libpcap_causes(programs.get(expr, [])))
    # A marker, not an instruction: how many times the atoms compute the IPv4 header length.
    computed = ours.pop("IPv4 header length computed", 0)
    total_ours, total_theirs = sum(ours.values()), sum(theirs.values())
    print(f"{len(rows)} expressions: pfc {total_ours}, libpcap {total_theirs}, "
          f"ratio {total_ours / max(total_theirs, 1):.3f}, excess {total_ours - total_theirs}")
    print(f"{'cause':32} {'pfc':>8} {'libpcap':>8} {'excess':>8}")
    for cause in sorted(set(ours) | set(theirs), key=lambda c: -(ours[c] - theirs[c])):
        print(f"{cause:32} {ours[cause]:8} {theirs[cause]:8} {ours[cause] - theirs[cause]:8}")
    # What eBPF cannot write as classic BPF does: a bounds check per packet read (classic
    # BPF checks every load itself) and the header length as a pointer (classic BPF's one
    # `ldxb 4*([k]&0xf)`). Without them, and with each header length at one instruction:
    checks = sum(n for cause, n in ours.items() if cause.startswith("bounds check"))
    floor = total_ours - checks - ours["IPv4 header length"] + computed
    print(f"without bounds checks ({checks}) and with each of the {computed} IPv4 header lengths at one "
          f"instruction: pfc {floor}, ratio {floor / max(total_theirs, 1):.3f}")
    ranked = sorted(zip(rows, atoms), key=lambda r: -(len([i for i in r[1] if not i.endswith(':')])
                                                         - len(programs.get(r[0], []))))
    for expr, atom in ranked[: args.show]:
        print(f"\n# {expr}")
        left, right = atom, programs.get(expr, [])
        for n in range(max(len(left), len(right))):
            a = left[n] if n < len(left) else ""
            b = right[n] if n < len(right) else ""
            print(f"  {a:44} | {b}")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
