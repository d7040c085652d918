"""A setup to audit (``decaylens audit --backend torch examples/audit_torch.py:build``): a small model
with every role, and AdamW with the usual no-decay list of name fragments, which catches the LayerNorm
by its name and misses the BatchNorm, the RMSNorm and the embeddings. ``tox -m compare`` stores its
audit in results/audits/ for the report."""

import torch
from torch import nn


class Net(nn.Module):
    """Embedding and learned positions → Linear → LayerNorm → BatchNorm1d → RMSNorm → Linear."""

    def __init__(self, vocab=100, width=32, positions=8):
        super().__init__()
        self.embed = nn.Embedding(vocab, width)
        self.pos_embed = nn.Parameter(torch.zeros(1, positions, width))
        self.fc1, self.head = nn.Linear(width, width), nn.Linear(width, 2)
        self.layer_norm, self.bn, self.rms = nn.LayerNorm(width), nn.BatchNorm1d(width), nn.RMSNorm(width)

    def forward(self, tokens):
        h = (self.embed(tokens) + self.pos_embed[:, : tokens.shape[1]]).mean(1)
        return self.head(self.rms(self.bn(torch.relu(self.layer_norm(self.fc1(h))))))


def build():
    torch.manual_seed(0)
    model = Net()
    no_decay = ["bias", "layer_norm.weight"]
    groups = [
        {"params": [p for n, p in model.named_parameters() if not any(s in n for s in no_decay)], "weight_decay": 0.01},
        {"params": [p for n, p in model.named_parameters() if any(s in n for s in no_decay)], "weight_decay": 0.0},
    ]
    optimizer = torch.optim.AdamW(groups, lr=1e-3)
    return model, optimizer, torch.optim.lr_scheduler.LinearLR(optimizer, start_factor=0.1, total_iters=100)
