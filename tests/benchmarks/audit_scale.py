"""How long ``decaylens audit`` takes on a BERT-base-sized model, and its peak memory.

    .tox/audit-transformers/bin/python tests/benchmarks/audit_scale.py [--layers 12]

Builds BERT-base from its config locally (hidden 768, 12 layers, 12 heads, intermediate 3072, vocab 30522:
about 110 M parameters, 0.44 GB in float32; no download), its optimizer the way Hugging Face's Trainer
builds it (``Trainer.create_optimizer``, AdamW, weight_decay 0.01) and audits them as the command does.
Prints the parameters, the time to build, the audit's time and the process's peak resident memory.
The targets (issue 29): under a minute on the 2-core machine and under 3 GB. Printed, not asserted.
"""

import argparse
import resource
import tempfile
import time

import transformers

from harness.audit import audit_objects, text

TARGET_SECONDS, TARGET_BYTES = 60.0, 3 * 2**30


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--layers", type=int, default=12, help="hidden layers (default 12, BERT-base)")
    args = parser.parse_args()
    start = time.perf_counter()
    model = transformers.BertForMaskedLM(transformers.BertConfig(num_hidden_layers=args.layers))
    with tempfile.TemporaryDirectory() as out:
        training = transformers.TrainingArguments(output_dir=out, weight_decay=0.01, report_to=[], use_cpu=True)
        optimizer = transformers.Trainer(model=model, args=training).create_optimizer()
    built = time.perf_counter()
    found = audit_objects("torch", (model, optimizer), "BERT-base, Trainer.create_optimizer()")
    audited = time.perf_counter()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux gives KiB
    print(text.summary(found))
    parameters = sum(p.numel() for p in model.parameters())
    print(f"parameters: {parameters / 1e6:.1f} M in {len(found.findings)} tensors")
    print(f"build: {built - start:.1f} s; audit: {audited - built:.1f} s (target < {TARGET_SECONDS:.0f} s)")
    print(f"peak resident memory: {peak / 2**30:.2f} GiB (target < {TARGET_BYTES / 2**30:.0f} GiB)")


if __name__ == "__main__":
    main()
