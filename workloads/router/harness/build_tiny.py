"""Build a tiny Llama + BPE tokenizer + peft LoRA adapters on disk — no downloads.

Run with the heavy environment:  .venv-vllm/bin/python workloads/router/harness/build_tiny.py OUT_DIR
Writes OUT_DIR/base (hidden 256, 4 heads → head_dim 64, 2 layers; ~5 MB, float32) and
OUT_DIR/adapters/<name> for each adapter (rank 8 on q_proj/v_proj, ~76 KB). The adapters are
seeded differently so they give different outputs. Idempotent: a complete OUT_DIR is reused
(OUT_DIR/.complete holds the recipe hash). Prints a JSON summary on stdout.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import sys
from pathlib import Path

RECIPE = {"hidden": 256, "heads": 4, "layers": 2, "inter": 512, "vocab": 512, "ctx": 512,
          "adapters": ["billing", "support"], "rank": 8, "seed": 7, "v": 1}
CORPUS = [
    "The invoice total is due at the end of the month.",
    "Please reset my password for the support portal.",
    "How many apples are left if you eat three of ten?",
    "Refunds are issued to the original payment method within five days.",
    "The quick brown fox jumps over the lazy dog.",
    "Kubernetes schedules pods onto nodes with enough memory.",
    "Our billing cycle starts on the first day of every month.",
    "Contact support if the router returns an error.",
] * 8


def build(out: Path) -> dict:
    import torch
    from peft import LoraConfig, get_peft_model
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers, decoders
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    recipe_hash = hashlib.sha256(json.dumps(RECIPE, sort_keys=True).encode()).hexdigest()[:12]
    stamp = out / ".complete"
    summary = {"dir": str(out), "base": str(out / "base"),
               "adapters": {a: str(out / "adapters" / a) for a in RECIPE["adapters"]}, "recipe": recipe_hash}
    if stamp.exists() and stamp.read_text() == recipe_hash:
        return summary | {"reused": True}
    if out.exists():
        shutil.rmtree(out)
    (out / "base").mkdir(parents=True)
    torch.manual_seed(RECIPE["seed"])

    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=RECIPE["vocab"], special_tokens=["<unk>", "<s>", "</s>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(CORPUS, trainer)
    hf_tok = PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="<unk>", bos_token="<s>", eos_token="</s>",
                                     pad_token="</s>")
    # A minimal chat template so /v1/chat/completions works.
    hf_tok.chat_template = ("{% for m in messages %}{{ m['role'] }}: {{ m['content'] }}\n{% endfor %}"
                            "{% if add_generation_prompt %}assistant:{% endif %}")
    hf_tok.save_pretrained(out / "base")

    cfg = LlamaConfig(vocab_size=len(hf_tok), hidden_size=RECIPE["hidden"], intermediate_size=RECIPE["inter"],
                      num_hidden_layers=RECIPE["layers"], num_attention_heads=RECIPE["heads"],
                      num_key_value_heads=RECIPE["heads"], max_position_embeddings=RECIPE["ctx"],
                      bos_token_id=hf_tok.bos_token_id, eos_token_id=hf_tok.eos_token_id,
                      pad_token_id=hf_tok.pad_token_id, tie_word_embeddings=False)
    model = LlamaForCausalLM(cfg).to(torch.float32)
    model.save_pretrained(out / "base", safe_serialization=True)

    for i, name in enumerate(RECIPE["adapters"]):
        torch.manual_seed(RECIPE["seed"] + 100 + i)
        base = LlamaForCausalLM.from_pretrained(out / "base", torch_dtype=torch.float32)
        lcfg = LoraConfig(r=RECIPE["rank"], lora_alpha=16, target_modules=["q_proj", "v_proj"],
                          lora_dropout=0.0, task_type="CAUSAL_LM", init_lora_weights=False)
        pm = get_peft_model(base, lcfg)
        pm.save_pretrained(out / "adapters" / name)
    stamp.write_text(recipe_hash)
    return summary | {"reused": False}


def main() -> None:
    ap = argparse.ArgumentParser(description="build the tiny model + LoRA adapters")
    ap.add_argument("out", type=Path)
    args = ap.parse_args()
    json.dump(build(args.out.resolve()), sys.stdout)
    print()


if __name__ == "__main__":
    main()
