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
        pretrain pilot-tiny-v1

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

# Issue 17's pilot: every experiment from the shipped trunks (tiny-v1) for 1000 steps, 2 seeds, on
# the synthetic data's seed 1 (the committed results use seed 0), then its scorecard (also after a
# failed run: the scorecard counts it; the exit status is the last failure's)
PILOT_DIR ?= results/pilot-tiny-v1
# the experiments that evaluate the CRF: as for the committed results, its parameters are searched
# per variant (`bench crf-search`) before their after-CRF numbers count
CRF_EXPERIMENTS := ablation-fov ablation-kernel ablation-msc ablation-aspp ablation-crf
pilot-tiny-v1: install
	status=0; for e in $(EXPERIMENTS); do $(BIN)/bench run $$e --data-seed 1 --backbone-weights tiny-v1 \
	    --max-steps 1000 --seeds 2 --results-dir $(PILOT_DIR) --wandb disabled || status=$$?; done; \
	for e in $(CRF_EXPERIMENTS); do $(BIN)/bench crf-search $$e --results-dir $(PILOT_DIR) || status=$$?; done; \
	$(BIN)/bench scorecard --results-dir $(PILOT_DIR) --out $(PILOT_DIR)/scorecard.md && exit $$status

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
