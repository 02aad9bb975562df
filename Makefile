# ooc — common tasks. `make demo` and `make test` are the two commands the README promises work
# on a fresh machine with a Rust toolchain and Python 3.

SF ?= 1
DATA ?= data/sf$(SF)
ROW_GROUP_ROWS ?= 1000000
CARGO ?= cargo

.PHONY: demo build data data-tpcds test lint oracle golden clean-data bench micro-bench difftest faults fuzz fuzz-ci

## Build ooc, generate TPC-H at scale factor $(SF) into $(DATA), run Q1 (a scan and aggregate)
## and Q5 (a six-table join) with --explain-analyze.
demo: build data
	./target/release/ooc query --data $(DATA) --file tests/tpch/queries/q01.sql
	./target/release/ooc query --data $(DATA) --file tests/tpch/queries/q01.sql --explain-analyze
	./target/release/ooc query --data $(DATA) --file tests/tpch/queries/q05.sql --explain-analyze

# Every workspace package is selected (only binaries are built) so that features resolve as in
# the Python extension's release build (benches/setup.sh), which then reuses arrow and parquet.
build:
	$(CARGO) build --release --workspace --bins

## Generate TPC-H data (skipped if already present).
data: build
	./target/release/ooc-datagen tpch --sf $(SF) --out $(DATA) --row-group-rows $(ROW_GROUP_ROWS)

## Generate TPC-DS data at scale factor $(SF) into data/tpcds-sf$(SF) (the 25 tables, the data
## `tpcgen-cli tpcds parquet` writes; skipped if already present).
data-tpcds: build
	./target/release/ooc-datagen tpcds --sf $(SF) --out data/tpcds-sf$(SF) --row-group-rows $(ROW_GROUP_ROWS)

## Every test: Rust unit, integration and golden tests, then the Python library's tests
## (pytest and docstring examples, in python/.venv; needs python3 with venv).
# ooc-python stays in the package set although `cargo test` builds nothing of it: features are
# resolved over the selected packages, and with it selected arrow and parquet get the same
# features (and the same build) as in the extension that run.sh builds next.
# ooc-micro-bench is left out: it only holds criterion benchmarks (see `make micro-bench`).
test:
	$(CARGO) test --workspace --exclude ooc-micro-bench
	python/tests/run.sh

## Benchmarks against DuckDB, Polars and DataFusion (see benches/README.md): generates TPC-H at
## $(SF) if absent, runs the suites, writes tables and plots to benches/results/.
# No warm-up round by default: the DuckDB reference run that starts every query reads the same
# files, so the measured runs already find them in the page cache.
BENCH_SUITES ?= tpch,memory,scale
BENCH_RUNS ?= 3
BENCH_WARMUP ?= 0
MEMORY_LIMIT ?= 1GB
bench: build
	benches/setup.sh
	benches/.venv/bin/python benches/bench.py --sf $(SF) --suites $(BENCH_SUITES) --runs $(BENCH_RUNS) --warmup $(BENCH_WARMUP) --memory-limit $(MEMORY_LIMIT)

## Differential SQL testing (tests/difftest): $(N) random queries from seed $(SEED), each run by
## ooc (unlimited and under a 4MB budget) and by DuckDB over edge-case tables and TPC-H SF0.05;
## minimized mismatches go to target/difftest-found. Uses the benchmark environment's wheel.
N ?= 1000
SEED ?= 1
difftest: build
	benches/setup.sh
	./target/release/ooc-datagen tpch --sf 0.05 --out target/difftest-tpch --row-group-rows 20000
	benches/.venv/bin/python tests/difftest/difftest.py -n $(N) --seed $(SEED) --tpch target/difftest-tpch

## Fault injection (tests/faults.rs): `ooc query` killed (SIGKILL) at random moments while it
## writes -o output (Parquet, CSV, .npy) and while it spills, $(KILLS) times each; checks that
## no partial result ever appears under the output's name and that leftovers go with the next
## run. `make test` runs the same test with 8 kills each.
KILLS ?= 50
faults:
	OOC_FAULT_KILLS=$(KILLS) $(CARGO) test --release --test faults -- --nocapture

## Coverage-guided fuzzing (fuzz/README.md; cargo-fuzz on the nightly toolchain): each target
## for $(FUZZ_SECONDS) seconds from the committed seeds, new inputs kept under target/.
FUZZ_SECONDS ?= 60
FUZZ_TARGETS ?= sql_plan parquet_read csv_read spill_read cache_read index_read
fuzz:
	for t in $(FUZZ_TARGETS); do \
		mkdir -p target/fuzz-corpus/$$t && \
		(cd fuzz && LSAN_OPTIONS=suppressions=$$PWD/lsan.supp \
			cargo +nightly fuzz run -O $$t ../target/fuzz-corpus/$$t corpus/$$t -- \
			-max_total_time=$(FUZZ_SECONDS) -timeout=10 -rss_limit_mb=2048) || exit 1; \
	done

## A short run of every fuzz target (CI): libFuzzer without a sanitizer, on the stable toolchain
## (RUSTC_BOOTSTRAP=1 lets it take the coverage flags cargo-fuzz passes; CI has no nightly),
## each target for $(FUZZ_CI_SECONDS) seconds from the committed seeds with a fixed seed.
FUZZ_CI_SECONDS ?= 20
FUZZ_CI = cd fuzz && RUSTC_BOOTSTRAP=1 cargo fuzz
FUZZ_CI_FLAGS = -O -s none --codegen-units 16 --target-dir ../target/fuzz-ci
fuzz-ci:
	command -v cargo-fuzz >/dev/null 2>&1 || $(CARGO) install --locked cargo-fuzz@0.13.2
	$(FUZZ_CI) build $(FUZZ_CI_FLAGS)
	for t in $(FUZZ_TARGETS); do \
		mkdir -p target/fuzz-ci/corpus/$$t && \
		($(FUZZ_CI) run $(FUZZ_CI_FLAGS) $$t ../target/fuzz-ci/corpus/$$t corpus/$$t -- \
			-seed=1 -max_total_time=$(FUZZ_CI_SECONDS) -timeout=30 -rss_limit_mb=2048 \
			> ../target/fuzz-ci/$$t.log 2>&1) || { tail -60 target/fuzz-ci/$$t.log; exit 1; }; \
		grep -h '^Done' target/fuzz-ci/$$t.log | sed "s/^/$$t: /"; \
	done

## Criterion micro-benchmarks of kernels and operators (benches/micro); summarize the results
## with `python3 benches/micro/summarize.py`.
micro-bench:
	$(CARGO) bench -p ooc-micro-bench

## Formatting, clippy (warnings are errors) and the API docs (no broken or private links);
## CI runs this before `make test`.
lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings
	RUSTDOCFLAGS="-D warnings" $(CARGO) doc --workspace --no-deps

## Compare ooc with DuckDB on every query in tests/queries (creates a virtualenv).
oracle: build
	./target/release/ooc-datagen tpch --sf 0.01 --out target/ooc-oracle-data --row-group-rows 10000
	./target/release/ooc-datagen edge --out target/ooc-oracle-data
	tests/oracle/venv.sh >/dev/null
	tests/oracle/.venv/bin/python tests/oracle/compare.py --data target/ooc-oracle-data --ooc target/release/ooc tests/queries/*.sql

## Regenerate the committed golden answers with DuckDB.
golden:
	tests/oracle/make_golden.sh

clean-data:
	rm -rf data/sf*
