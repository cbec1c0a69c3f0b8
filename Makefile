# Two commands on a fresh machine: `make run` compiles an example, `make test` runs every test.
.PHONY: run test doc setup man install

EXAMPLE ?= rules-examples/edge.pf
# Where cargo puts the release binary (CARGO_TARGET_DIR moves it).
RELEASE_DIR := $(or $(CARGO_TARGET_DIR),target)/release

setup:
	@./scripts/setup.sh

run: setup
	cargo build --release --quiet
	$(RELEASE_DIR)/pfc check $(EXAMPLE)
	$(RELEASE_DIR)/pfc compile $(EXAMPLE) -o $(RELEASE_DIR)/example.o
	$(RELEASE_DIR)/pfc compile $(EXAMPLE) --emit ir

test: setup
	cargo test --workspace

# The API docs of every crate, with rustdoc's warnings as errors (a broken intra-doc link,
# a link to a private item): CI runs it after the tests.
doc:
	RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps --quiet

# Man pages (pfc.1 and pfc-SUBCOMMAND.1) into target/man; `man -l target/man/pfc.1`.
man:
	cargo run --quiet -- man --dir target/man

# Installs the binary, its man pages, shell completions and the systemd template unit
# under $(DESTDIR)$(PREFIX) (the unit under $(DESTDIR)$(UNITDIR)). PFC names the binary
# to install; by default a release build.
PREFIX ?= /usr/local
UNITDIR ?= /etc/systemd/system
PFC ?= $(RELEASE_DIR)/pfc

install:
	@if [ "$(PFC)" = $(RELEASE_DIR)/pfc ]; then cargo build --release --quiet; fi
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/share/man/man1 \
		$(DESTDIR)$(PREFIX)/share/bash-completion/completions \
		$(DESTDIR)$(PREFIX)/share/zsh/site-functions \
		$(DESTDIR)$(PREFIX)/share/fish/vendor_completions.d $(DESTDIR)$(UNITDIR)
	install -m 755 $(PFC) $(DESTDIR)$(PREFIX)/bin/pfc
	$(PFC) man --dir $(DESTDIR)$(PREFIX)/share/man/man1
	$(PFC) completions bash > $(DESTDIR)$(PREFIX)/share/bash-completion/completions/pfc
	$(PFC) completions zsh > $(DESTDIR)$(PREFIX)/share/zsh/site-functions/_pfc
	$(PFC) completions fish > $(DESTDIR)$(PREFIX)/share/fish/vendor_completions.d/pfc.fish
	sed 's|/usr/local/bin/pfc|$(PREFIX)/bin/pfc|g' contrib/systemd/pfc@.service > $(DESTDIR)$(UNITDIR)/pfc@.service
	chmod 644 $(DESTDIR)$(UNITDIR)/pfc@.service
