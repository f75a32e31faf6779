#!/usr/bin/env python3
"""PyTorch reference of mmkt's JMVAE-kl training step (Suzuki et al. 2016, MNIST setting).

The same networks, objective and optimizer as `mmkt bench` times (lib/models, lib/train):
  image x: 784 -> 512 -> 512 (ReLU) -> Linear(512, 2*64)       q(z|x)      (unimodal encoder)
  label w: onehot 10 -> 512 -> 512 (ReLU) -> Linear(512, 2*64)  q(z|w)
  joint:   [784 -> 512 -> 512 | 10 -> 512 -> 512] -> 1024 -> 512 (ReLU) -> 2*64   q(z|x,w)
  p(x|z):  64 -> 512 -> 512 (ReLU) -> 784 logits, Bernoulli;  p(w|z): 64 -> 512 -> 512 -> 10
  loss = -mean[ log p(x|z) + log p(w|z) - KL(q(z|x,w) || N(0,I))
                - alpha (KL(q(z|x,w) || q(z|x)) + KL(q(z|x,w) || q(z|w))) ],  alpha = 0.1
  Adam(lr 1e-3), batch 100, log-variances clamped to [-30, 20] as in mmkt.
Written as a researcher would write it in PyTorch 1.13 (Debian's python3-torch, the same
ATen/OpenBLAS kernels as libtorch): nn.Modules, autograd, torch.optim.Adam,
zero_grad(set_to_none=True). Data: random binarized images and labels of MNIST's shapes
(the step's cost does not depend on pixel values).

Prints one JSON line: median samples/s over --repeats timings of --steps steps each, after
--warmup steps. Usage: /usr/bin/python3 experiments/baselines/jmvae_step.py --threads 2
"""
import argparse
import json
import statistics
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


def mlp(inp, widths):
    layers = []
    for w in widths:
        layers += [nn.Linear(inp, w), nn.ReLU()]
        inp = w
    return nn.Sequential(*layers)


class JMVAE(nn.Module):
    def __init__(self, latent=64, hidden=512, pixels=784, classes=10, alpha=0.1):
        super().__init__()
        self.latent, self.classes, self.alpha = latent, classes, alpha
        self.enc_image = mlp(pixels, [hidden, hidden])
        self.enc_image_head = nn.Linear(hidden, 2 * latent)
        self.enc_label = mlp(classes, [hidden, hidden])
        self.enc_label_head = nn.Linear(hidden, 2 * latent)
        self.joint_image = mlp(pixels, [hidden, hidden])
        self.joint_label = mlp(classes, [hidden, hidden])
        self.joint_head = nn.Sequential(nn.Linear(2 * hidden, hidden), nn.ReLU(),
                                        nn.Linear(hidden, 2 * latent))
        self.dec_image = nn.Sequential(mlp(latent, [hidden, hidden]), nn.Linear(hidden, pixels))
        self.dec_label = nn.Sequential(mlp(latent, [hidden, hidden]), nn.Linear(hidden, classes))

    @staticmethod
    def gaussian(params):
        mu, logvar = params.chunk(2, -1)
        return mu, logvar.clamp(-30.0, 20.0)

    @staticmethod
    def kl(mu_a, lv_a, mu_b, lv_b):
        return 0.5 * (lv_b - lv_a + (lv_a.exp() + (mu_a - mu_b).pow(2)) * torch.exp(-lv_b) - 1.0).sum(-1)

    def loss(self, x, w):
        flat = x.flatten(1)
        onehot = F.one_hot(w, self.classes).float()
        mu, lv = self.gaussian(self.joint_head(torch.cat([self.joint_image(flat), self.joint_label(onehot)], 1)))
        z = mu + torch.exp(0.5 * lv) * torch.randn_like(mu)
        rec_x = -F.binary_cross_entropy_with_logits(self.dec_image(z), flat, reduction="none").sum(1)
        rec_w = torch.log_softmax(self.dec_label(z), -1).gather(1, w.unsqueeze(1)).squeeze(1)
        kl = 0.5 * (mu.pow(2) + lv.exp() - 1.0 - lv).sum(-1)
        mu_x, lv_x = self.gaussian(self.enc_image_head(self.enc_image(flat)))
        mu_w, lv_w = self.gaussian(self.enc_label_head(self.enc_label(onehot)))
        bound = rec_x + rec_w - kl - self.alpha * (self.kl(mu, lv, mu_x, lv_x) + self.kl(mu, lv, mu_w, lv_w))
        return -bound.mean()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batch", type=int, default=100)
    ap.add_argument("--warmup", type=int, default=10)
    ap.add_argument("--steps", type=int, default=50)
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    model = JMVAE()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    batches = [((torch.rand(args.batch, 1, 28, 28) < 0.13).float(), torch.randint(0, 10, (args.batch,)))
               for _ in range(20)]

    def step(i):
        x, w = batches[i % len(batches)]
        opt.zero_grad(set_to_none=True)
        loss = model.loss(x, w)
        loss.backward()
        opt.step()
        return loss.item()

    for i in range(args.warmup):
        step(i)
    rates = []
    for r in range(args.repeats):
        start = time.perf_counter()
        for i in range(args.steps):
            step(i)
        rates.append(args.batch * args.steps / (time.perf_counter() - start))
    print(json.dumps({"implementation": "pytorch " + torch.__version__, "threads": args.threads,
                      "batch": args.batch, "samples_per_second": statistics.median(rates),
                      "runs": rates}))


if __name__ == "__main__":
    main()
