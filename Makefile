# Two commands on a fresh machine: `make run` compiles an example, `make test` runs every test.
.PHONY: run test setup man

EXAMPLE ?= rules-examples/edge.pf

setup:
	@./scripts/setup.sh

run: setup
	cargo build --release --quiet
	./target/release/pfc check $(EXAMPLE)
	./target/release/pfc compile $(EXAMPLE) -o target/example.o
	./target/release/pfc compile $(EXAMPLE) --emit ir

test: setup
	cargo test --workspace

# Man pages (pfc.1 and pfc-SUBCOMMAND.1) into target/man; `man -l target/man/pfc.1`.
man:
	cargo run --quiet -- man --dir target/man
