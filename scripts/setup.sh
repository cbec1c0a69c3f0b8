#!/usr/bin/env bash
# Installs the system packages pfc's build and tests need, when they are missing.
# libbpf-rs builds a vendored libbpf: it needs libelf, zlib and pkg-config.
# bpftool and iproute2 are used by the kernel interoperability tests; tshark reads back
# `pfc watch --pcapng` captures in tests/load_attach/watch.rs.
set -euo pipefail
packages=(libelf-dev zlib1g-dev pkg-config make gcc bpftool iproute2 libpcap-dev tshark)
missing=()
for package in "${packages[@]}"; do
  dpkg -s "$package" >/dev/null 2>&1 || missing+=("$package")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  if [ "$(id -u)" -eq 0 ]; then sudo=""; else sudo="sudo"; fi
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
fi
# bpffs, for pinning; kernel tests skip with a reason when it cannot be mounted.
if [ "$(id -u)" -eq 0 ] && ! mountpoint -q /sys/fs/bpf 2>/dev/null; then
  mount -t bpf bpf /sys/fs/bpf 2>/dev/null || echo "setup: could not mount bpffs; kernel tests will skip"
fi
