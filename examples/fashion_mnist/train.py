"""Training of FashionCNN on CPU, with a checkpoint cache keyed by the training configuration."""

import dataclasses
import hashlib
import json
import os
import time

import numpy as np
import torch
from torch import nn

import data
import model as model_lib


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    epochs: int = 3
    batch_size: int = 128
    lr: float = 2e-3
    weight_decay: float = 1e-4
    train_images: int = 60000  # first N training images
    seed: int = 0

    def key(self, arch=model_lib.ARCH_VERSION):
        """Short hash of everything that determines the trained weights (arch: the network's
        ARCH_VERSION, which another example passes for its own network)."""
        blob = json.dumps({"arch": arch, "input": data.NORMALIZATION,
                           **dataclasses.asdict(self)},
                          sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()[:12]


def accuracy(net, x, y, batch_size=1000):
    """Top-1 of net on float32 [N, 1, 28, 28] x and int labels y (torch eval mode)."""
    net.eval()
    correct = 0
    with torch.no_grad():
        for i in range(0, len(x), batch_size):
            logits = net(torch.from_numpy(x[i:i + batch_size]))
            correct += int((logits.argmax(1).numpy() == y[i:i + batch_size]).sum())
    return correct / len(x)


def train(config, x, y, log=print, factory=model_lib.FashionCNN):
    """Trains a fresh factory() network (default FashionCNN) on x (float32 [N, 1, 28, 28]) and
    y (labels [N]); Adam with a one-cycle learning rate. Returns the network in eval mode."""
    torch.manual_seed(config.seed)
    rng = np.random.default_rng(config.seed)
    x, y = x[:config.train_images], y[:config.train_images].astype(np.int64)
    net = factory()
    steps_per_epoch = (len(x) + config.batch_size - 1) // config.batch_size
    optimizer = torch.optim.AdamW(net.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    schedule = torch.optim.lr_scheduler.OneCycleLR(
        optimizer, max_lr=config.lr, epochs=config.epochs, steps_per_epoch=steps_per_epoch)
    loss_fn = nn.CrossEntropyLoss()
    for epoch in range(config.epochs):
        net.train()
        start = time.perf_counter()
        order = rng.permutation(len(x))
        total_loss = 0.0
        for step in range(steps_per_epoch):
            idx = order[step * config.batch_size:(step + 1) * config.batch_size]
            loss = loss_fn(net(torch.from_numpy(x[idx])), torch.from_numpy(y[idx]))
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            schedule.step()
            total_loss += loss.item() * len(idx)
        log(f"  epoch {epoch + 1}/{config.epochs}: loss {total_loss / len(x):.4f} "
            f"({time.perf_counter() - start:.1f} s)")
    return net.eval()


def load_or_train(config, x, y, cache_dir, log=print, factory=model_lib.FashionCNN,
                  arch=model_lib.ARCH_VERSION):
    """Returns the network for config from cache_dir/model-<key>.pt, training (and caching) it
    first when that file is missing. factory builds the network (default FashionCNN), arch is
    its ARCH_VERSION (part of the key)."""
    path = os.path.join(cache_dir, f"model-{config.key(arch)}.pt")
    net = factory()
    if os.path.exists(path):
        net.load_state_dict(torch.load(path))
        log(f"reusing trained model {path}")
        return net.eval()
    log(f"training {config.epochs} epoch(s) on {min(len(x), config.train_images)} images "
        f"(checkpoint {path})")
    net = train(config, x, y, log, factory)
    os.makedirs(cache_dir, exist_ok=True)
    tmp = path + ".tmp"
    torch.save(net.state_dict(), tmp)
    os.replace(tmp, path)
    return net
