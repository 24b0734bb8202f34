# deeplab-bench. Every target installs first (once), so each works as the first command.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

# Every registered experiment (tests/test_registry.py checks this list against `bench list`).
EXPERIMENTS := ablation-fov ablation-kernel ablation-dilation ablation-msc ablation-aspp \
               ablation-image-pooling ablation-multigrid ablation-output-stride ablation-crf \
               ablation-decoder versions

.PHONY: install test test-extra tables bench bench-peers bench-train paper-smoke ablations $(EXPERIMENTS) list clean \
        pretrain pilot-tiny-v1 rerun-tiny-v1

install: $(STAMP)

# Re-installs only when pyproject.toml changes. Needs Python 3.10+ and a C compiler (pydensecrf2).
$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 10) else "deeplab-bench needs Python 3.10+, found " + sys.version.split()[0])'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

test: install
	WANDB_MODE=offline WANDB_SILENT=true $(BIN)/python -m pytest -q -m "not extra"

# The slow end-to-end checks `make test` leaves out (tests marked extra): a preempted SLURM job
# under submitit's local executor requeues and resumes to the uninterrupted run's mIoU.
test-extra: install
	WANDB_MODE=offline WANDB_SILENT=true $(BIN)/python -m pytest -q -m extra

# Benchmarks measured side by side in one run -> results/bench.md, results/bench.csv; then the
# peers (segmentation-models-pytorch, in the test extra that install installs) -> results/bench-peers.md,
# and the tiny training step per path -> results/bench-train.md
bench: install
	$(BIN)/python tools/benchmarks.py --out results
	$(BIN)/python tools/peers.py --out results
	$(BIN)/python tools/train_speed.py --out results

# Only the training step's speed per path (fp32, channels-last, + bf16) -> results/bench-train.md, .csv
bench-train: install
	$(BIN)/python tools/train_speed.py --out results

# Only the peers: our v3 / v3+ beside smp's DeepLabV3 / DeepLabV3Plus -> results/bench-peers.md, .csv
bench-peers: install
	$(BIN)/python tools/peers.py --out results

# Every experiment at --scale paper, full-size networks and crops, on this CPU: a generated VOC tree
# (500x375 images) served on 127.0.0.1 and prepared by `bench data prepare`, a seeded ImageNet
# weights cache, 2 steps at batch 2, 4 val images, CRF, records, tables (tools/paper_smoke.py)
paper-smoke: install
	$(BIN)/python tools/paper_smoke.py

# The tiny scale's pretrained trunks (its "ImageNet", bench/pretrain.py), rebuilt into trunks/tiny-v1/:
# about 18 min on a 2-core CPU; each file's sha256 is in its record
pretrain: install
	for b in vgg16 resnet50 resnet101 xception65; do $(BIN)/bench pretrain $$b --scale tiny || exit $$?; done

# Issue 17's tiny protocol: every experiment from the shipped trunks (tiny-v1) for 1000 steps;
# then, as for the committed results, the CRF's parameters searched per variant (`bench
# crf-search`; skipped for an experiment the results dir has searched: later runs of a searched
# variant start from its parameters, but a variant with no finished run at search time is not
# searched: delete RESULTS_DIR/crf/EXPERIMENT to search again);
# then the scorecard (also after a failed run: the scorecard counts it; the exit status is the
# last failure's). $(1): the results dir; $(2): more `bench run` options.
CRF_EXPERIMENTS := ablation-fov ablation-kernel ablation-msc ablation-aspp ablation-crf
define tiny_v1_sweep
	status=0; for e in $(EXPERIMENTS); do $(BIN)/bench run $$e --backbone-weights tiny-v1 --max-steps 1000 $(2) \
	    --results-dir $(1) || status=$$?; done; \
	for e in $(CRF_EXPERIMENTS); do test -d $(1)/crf/$$e || $(BIN)/bench crf-search $$e --results-dir $(1) \
	    || status=$$?; done; \
	$(BIN)/bench scorecard --results-dir $(1) --out $(1)/scorecard.md && exit $$status
endef

# The pilot: on the synthetic data's seed 1 (the committed results use seed 0), 2 seeds
PILOT_DIR ?= results/pilot-tiny-v1
pilot-tiny-v1: install
	$(call tiny_v1_sweep,$(PILOT_DIR),--data-seed 1 --seeds 2 --wandb disabled)

# The rerun the pilot called for: data seed 0, the scale's 3 seeds (resumable: finished runs are skipped)
RERUN_DIR ?= results/tiny-v1
rerun-tiny-v1: install
	$(call tiny_v1_sweep,$(RERUN_DIR),)

list: install
	$(BIN)/bench list

# One target per registered experiment: `make ablation-aspp` = `bench run ablation-aspp`.
$(EXPERIMENTS): install
	$(BIN)/bench run $@

# Every experiment in turn (resumable: finished runs are skipped).
ablations: $(EXPERIMENTS)

# Rebuild every experiment's tables and plots from its records, without training, and
# results/tables.tex, one LaTeX document that \inputs them all (cd results && pdflatex tables.tex).
tables: install
	$(BIN)/bench table --all --results-dir results

clean:
	rm -rf $(VENV) .pytest_cache results/wandb results/lightning
