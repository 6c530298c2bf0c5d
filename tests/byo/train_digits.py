"""A small training script that knows nothing of fbtui: argparse flags, loss lines on stdout,
TensorBoard event files. It trains an MLP on scikit-learn's digits."""

import argparse
import os
import time

import torch
from sklearn.datasets import load_digits
from tensorboardX import SummaryWriter


def main() -> None:
    p = argparse.ArgumentParser(description="digits MLP")
    p.add_argument("--lr", type=float, default=0.01, help="learning rate")
    p.add_argument("--hidden-size", type=int, default=32)
    p.add_argument("--steps", type=int, default=300)
    p.add_argument("--log-every", type=int, default=50)
    p.add_argument("--weight-decay", type=float, default=0.0)
    p.add_argument("--no-bias", action="store_true")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out-dir", default="runs")
    p.add_argument("--delay", type=float, default=0.0, help="seconds to wait after each step")
    args = p.parse_args()
    torch.manual_seed(args.seed)
    x, y = load_digits(return_X_y=True)
    x = torch.tensor(x / 16.0, dtype=torch.float32)
    y = torch.tensor(y)
    g = torch.Generator().manual_seed(0)
    order = torch.randperm(len(y), generator=g)
    train, val = order[:1400], order[1400:]
    model = torch.nn.Sequential(torch.nn.Linear(64, args.hidden_size, bias=not args.no_bias), torch.nn.ReLU(),
                                torch.nn.Linear(args.hidden_size, 10))
    opt = torch.optim.Adam(model.parameters(), lr=args.lr, weight_decay=args.weight_decay)
    os.makedirs(args.out_dir, exist_ok=True)
    writer = SummaryWriter(os.path.join(args.out_dir, "tb"))
    print(f"config: {vars(args)}", flush=True)
    for step in range(1, args.steps + 1):
        idx = train[torch.randint(len(train), (64,))]
        loss = torch.nn.functional.cross_entropy(model(x[idx]), y[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
        writer.add_scalar("Loss/train", loss.item(), step)
        if args.delay:
            time.sleep(args.delay)
        if step % args.log_every == 0:
            with torch.no_grad():
                val_loss = torch.nn.functional.cross_entropy(model(x[val]), y[val]).item()
                acc = (model(x[val]).argmax(1) == y[val]).float().mean().item()
            writer.add_scalar("Accuracy/val", acc, step)
            writer.flush()
            print(f"step {step} | loss {loss.item():.4f} | val {val_loss:.4f}", flush=True)
    writer.close()
    torch.save(model.state_dict(), os.path.join(args.out_dir, "model.pt"))


if __name__ == "__main__":
    main()
