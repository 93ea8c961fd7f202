"""`llmtool generate` at scale: results streamed to an --output file, --resume, the progress bar, and the compiled
(static KV cache) decoder."""

import json
from types import SimpleNamespace

import pytest
import torch

from llmtool import generation, models
from llmtool.errors import Interrupted, LlmtoolError, UsageError

from conftest import CORPUS, run_on_a_terminal

BATCH = 2  # windows of 32 prompts: the 40-prompt file spans two windows and 20 batches
COUNT = 40


@pytest.fixture(scope="module")
def prompts():
    lines = [line for line in CORPUS.read_text(encoding="utf-8").splitlines() if line.strip()]
    return [" ".join(line.split()[:2 + i % 7]) for i, line in enumerate(lines[:COUNT])]  # 2 to 8 words


@pytest.fixture
def prompt_file(tmp_path, prompts):
    path = tmp_path / "prompts.txt"
    path.write_text("\n".join(prompts) + "\n", encoding="utf-8")
    return path


def args(model, prompt_file, *extra):
    return ["generate", "--model", model, "--file", prompt_file, "--batch-size", BATCH, "--max-new-tokens", "4",
            *extra]


def records(path):
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_output_file_holds_the_json_records_in_prompt_order(run_cli, tiny_gpt2, prompt_file, prompts, tmp_path):
    sampled = ["--do-sample", "--seed", "3"]  # a prompt's draws are its own: the same however results are written
    printed = run_cli(*args(tiny_gpt2, prompt_file, *sampled), "--json")
    out = tmp_path / "out.jsonl"
    written = run_cli(*args(tiny_gpt2, prompt_file, *sampled), "--output", out)
    assert written.exit_code == 0, written.output
    assert written.stdout == ""  # results go to the file; the summary to stderr
    assert f"{COUNT} results written to {out}" in written.stderr
    assert records(out) == json.loads(printed.stdout)["results"]
    assert [r["prompt"] for r in records(out)] == prompts


def test_plain_text_streams_in_prompt_order(run_cli, tiny_gpt2, prompt_file, prompts):
    report = json.loads(run_cli(*args(tiny_gpt2, prompt_file), "--json").stdout)
    plain = run_cli(*args(tiny_gpt2, prompt_file))
    assert plain.stdout == "\n\n".join(r["prompt"] + r["generations"][0]["text"] for r in report["results"]) + "\n"
    assert plain.stderr == ""  # no progress bar when stderr is not a terminal


def test_windows_bound_what_is_read_ahead(tiny_gpt2):
    lm = models.load_model(str(tiny_gpt2), device="cpu")
    read = []

    def source():
        for i in range(80):
            read.append(i)
            yield f"prompt number {i}"

    settings = generation.GenerationSettings(max_new_tokens=2, batch_size=BATCH)
    stream = generation.generate_stream(lm, source(), settings)
    first = next(stream)
    assert first.prompt == "prompt number 0"
    assert len(read) == BATCH * generation.WINDOW_BATCHES  # one window in memory, not the whole input
    assert len([first, *stream]) == 80


def test_interrupted_then_resumed_file_equals_an_uninterrupted_one(run_cli, tiny_gpt2, prompt_file, tmp_path,
                                                                   monkeypatch):
    sampled = ["--do-sample", "--seed", "11"]  # sampling too: a resumed prompt draws from its own stream
    whole = tmp_path / "whole.jsonl"
    assert run_cli(*args(tiny_gpt2, prompt_file, *sampled), "-o", whole).exit_code == 0

    batches = generation._Decoder.batches
    stop = {"after": 18}  # batch 18 of 20: inside the second window

    def ctrl_c_at_a_batch(self, encoded, budgets, first=0):
        for item in batches(self, encoded, budgets, first):
            if stop["after"] is not None:
                stop["after"] -= 1
                if stop["after"] == 0:
                    raise KeyboardInterrupt
            yield item

    monkeypatch.setattr(generation._Decoder, "batches", ctrl_c_at_a_batch)
    part = tmp_path / "part.jsonl"
    stopped = run_cli(*args(tiny_gpt2, prompt_file, *sampled), "-o", part)
    assert isinstance(stopped.exception, Interrupted)
    kept = len(records(part))
    assert 32 <= kept < COUNT and records(part) == records(whole)[:kept]
    assert str(stopped.exception) == (f"interrupted after {kept} of {COUNT} prompts; the results of the {kept} "
                                      f"prompts before are in {part}: rerun with --resume to continue")

    with part.open("ab") as handle:  # a kill in the middle of a write leaves half a record
        handle.write(b'{"prompt": "half a rec')
    stop["after"] = None
    resumed = run_cli(*args(tiny_gpt2, prompt_file, *sampled), "-o", part, "--resume")
    assert resumed.exit_code == 0, resumed.output
    assert f"{COUNT - kept} results written to {part}" in resumed.stderr
    assert part.read_bytes() == whole.read_bytes()

    again = run_cli(*args(tiny_gpt2, prompt_file), "-o", part, "--resume")
    assert again.exit_code == 0 and f"all {COUNT} prompts already have results in {part}" in again.stderr
    assert part.read_bytes() == whole.read_bytes()


def test_an_existing_output_is_kept_unless_resumed_or_overwritten(run_cli, tiny_gpt2, prompt_file, tmp_path):
    out = tmp_path / "out.jsonl"
    out.write_text('{"prompt": "older work"}\n', encoding="utf-8")
    refused = run_cli(*args(tiny_gpt2, prompt_file), "-o", out)
    assert isinstance(refused.exception, LlmtoolError)
    assert "is not empty; add --overwrite to replace it or --resume to continue it" in str(refused.exception)
    resumed = run_cli(*args(tiny_gpt2, prompt_file), "-o", out, "--resume")
    assert "line 1 is for another prompt than prompt 1 of the input" in str(resumed.exception)
    assert out.read_text(encoding="utf-8") == '{"prompt": "older work"}\n'
    replaced = run_cli(*args(tiny_gpt2, prompt_file), "-o", out, "--overwrite")
    assert replaced.exit_code == 0 and len(records(out)) == COUNT


def test_a_foreign_file_is_never_resumed_into(run_cli, tiny_gpt2, prompt_file, tmp_path):
    out = tmp_path / "notes.jsonl"
    out.write_text("my notes\n", encoding="utf-8")
    result = run_cli(*args(tiny_gpt2, prompt_file), "-o", out, "--resume")
    assert "line 1 is not a result record" in str(result.exception)
    assert out.read_text(encoding="utf-8") == "my notes\n"


def test_an_error_in_a_later_window_keeps_the_results_before_it(run_cli, tiny_gpt2, prompt_file, prompts, tmp_path):
    lines = prompts[:35] + ["word " * 200] + prompts[35:]  # prompt 36 is past the model's 128 positions
    prompt_file.write_text("\n".join(lines) + "\n", encoding="utf-8")
    out = tmp_path / "out.jsonl"
    result = run_cli(*args(tiny_gpt2, prompt_file), "-o", out)
    message = str(result.exception)
    assert isinstance(result.exception, UsageError)
    assert message.startswith("prompt 36 plus its new tokens reach")
    assert message.endswith(f"the results of the 32 prompts before are in {out}: rerun with --resume to continue")
    assert [r["prompt"] for r in records(out)] == prompts[:32]


@pytest.mark.parametrize("extra, message", [
    (["--resume"], "--resume works on the file given with --output FILE"),
    (["--overwrite"], "--overwrite works on the file given with --output FILE"),
    (["-o", "OUT", "--resume", "--overwrite"], "choose one"),
    (["-o", "OUT", "--json"], "--output writes the --json records to the file"),
    (["-o", "OUT", "--stream"], "--stream and --output do not mix"),
    (["-o", "DIR"], "is a directory; give a file name"),
    (["-o", "DIR/missing/out.jsonl"], "does not exist; create it first"),
    (["-o", "PROMPTS"], "is the prompt file itself"),
])
def test_bad_output_options(run_cli, tiny_gpt2, prompt_file, tmp_path, extra, message):
    named = {"OUT": str(tmp_path / "out.jsonl"), "DIR": str(tmp_path), "PROMPTS": str(prompt_file)}
    extra = [named.get(a, a.replace("DIR", str(tmp_path))) for a in extra]
    before = prompt_file.read_bytes()
    result = run_cli(*args(tiny_gpt2, prompt_file), *extra)
    assert isinstance(result.exception, LlmtoolError) and message in str(result.exception), result.output
    assert prompt_file.read_bytes() == before and not (tmp_path / "out.jsonl").exists()


def test_prompt_file_lines_are_checked_and_numbered_before_any_work(run_cli, tiny_gpt2, tmp_path):
    path = tmp_path / "prompts.txt"
    path.write_bytes("\ufeffone\r\ntwo\n".encode() + b"caf\xe9\n")
    result = run_cli("generate", "--model", tiny_gpt2, "--file", path, "-o", tmp_path / "out.jsonl")
    assert "is not UTF-8 text (line 3, byte 15)" in str(result.exception)
    assert not (tmp_path / "out.jsonl").exists()
    path.write_bytes("\ufeffone\r\ntwo\n".encode())  # a byte-order mark and Windows line ends are not text
    assert list(generation.PromptFile(path)) == ["one", "two"]


def test_quiet_writes_nothing_to_stderr(run_cli, tiny_gpt2, prompt_file, tmp_path):
    result = run_cli(*args(tiny_gpt2, prompt_file), "-o", tmp_path / "out.jsonl", "--quiet")
    assert result.exit_code == 0 and result.stdout == "" and result.stderr == ""


def test_progress_bar_goes_to_a_terminal_stderr_and_stdout_stays_clean(run_cli, tiny_gpt2, prompt_file):
    expected = run_cli(*args(tiny_gpt2, prompt_file)).stdout
    shown, stdout = run_on_a_terminal(args(tiny_gpt2, prompt_file), stdout_too=False)
    assert stdout.decode() == expected
    assert b"generating" in shown and f"/{COUNT}".encode() in shown and b"tok/s" in shown


def test_automatic_compile_rule():
    settings = generation.GenerationSettings(max_new_tokens=100, batch_size=8)
    cuda = SimpleNamespace(model=SimpleNamespace(_can_compile_fullgraph=True), device=torch.device("cuda"))
    cpu = SimpleNamespace(model=cuda.model, device=torch.device("cpu"))
    batches = generation.AUTO_COMPILE_MIN_STEPS // 100  # batches of 100 new tokens that repay the compile
    assert generation.use_compiled_decoder(cuda, settings, batches * 8, None)
    assert not generation.use_compiled_decoder(cuda, settings, (batches - 1) * 8, None)
    assert not generation.use_compiled_decoder(cpu, settings, 100 * batches * 8, None)  # never by itself off CUDA
    assert not generation.use_compiled_decoder(cuda, settings, batches * 8, False)
    assert generation.use_compiled_decoder(cpu, settings, 1, True)
    other = SimpleNamespace(model=SimpleNamespace(), device=torch.device("cuda"))
    assert not generation.use_compiled_decoder(other, settings, batches * 8, None)
    with pytest.raises(UsageError, match="cannot decode with the static KV cache that compiling needs"):
        generation.use_compiled_decoder(other, settings, 1, True)


def compiled_equals_eager(model_dir, device, prompts):
    lm = models.load_model(str(model_dir), device=device, dtype="fp32")
    settings = generation.GenerationSettings(max_new_tokens=12, batch_size=4)
    eager = generation.generate(lm, prompts, settings)
    compiled = generation.generate(lm, prompts, settings, compiled=True)
    assert [g.token_ids for g in compiled.generations] == [g.token_ids for g in eager.generations]
    assert sum(sum(g.new_tokens) for g in compiled.generations) > 0


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU: the compiled static-cache decoder is "
                                                          "the GPU path (the slow test below runs it on the CPU)")
def test_compiled_decoder_on_cuda_gives_the_eager_tokens_in_fp32(tiny_gpt2, tiny_t5, prompts):
    compiled_equals_eager(tiny_gpt2, "cuda", prompts[:10])
    compiled_equals_eager(tiny_t5, "cuda", ["summarize: " + p for p in prompts[:10]])


@pytest.mark.slow
def test_compiled_decoder_on_cpu_gives_the_eager_tokens(tiny_gpt2, tiny_t5, prompts):
    compiled_equals_eager(tiny_gpt2, "cpu", prompts[:10])
    compiled_equals_eager(tiny_t5, "cpu", ["summarize: " + p for p in prompts[:10]])
