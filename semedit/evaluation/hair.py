"""Measures of hairstyle transfer: against true images, and the seed's identity retrieval protocol.

- ``naive_transfer``: the baseline, the hair image's hair pixels pasted onto the face image.
- ``score_against_truth``: PSNR, LPIPS, hair IoU (a segmenter's map of the result against the
  true label map) and identity distance to the face image, per pair.
- ``retrieval_ranks`` / ``hair_retrieval``: the FG'21 protocol: a gallery of N generated people;
  queries are transfers onto some of them (another person's hair, another pose); each query is
  ranked against the whole gallery by identity distance, and the rank of its own person counts
  (top-1 share, mean rank; the paper: 98.3 % and 1.143 with ArcFace over 100k images).
"""
from __future__ import annotations

from typing import Callable, Dict

import torch

from .. import segmentation as L
from ..metrics import psnr

def naive_transfer(face: torch.Tensor, hair: torch.Tensor, hair_labels: torch.Tensor) -> torch.Tensor:
    """The hair image's hair pixels (labels [B, R, R]) over the face image: [B, 3, R, R]."""
    m = (hair_labels == L.HAIR).float()[:, None].to(face)
    return hair.to(face) * m + face * (1 - m)


@torch.no_grad()
def score_against_truth(results: torch.Tensor, truth: torch.Tensor, truth_labels: torch.Tensor,
                        faces: torch.Tensor, *, perceptual, segment, identity) -> Dict[str, torch.Tensor]:
    """Per pair [B]: PSNR and LPIPS to the true image, hair IoU of ``segment(results)`` against the
    true labels [B, R, R], identity distance to the face image (all images [B, 3, R, R])."""
    out = {"PSNR": torch.tensor([psnr(r[None], t[None]) for r, t in zip(results, truth)]),
           "LPIPS": perceptual(results, truth).cpu()}
    pred = segment(results).cpu() == L.HAIR
    true = truth_labels.cpu() == L.HAIR
    union = (pred | true).flatten(1).sum(1).float()
    out["hair IoU"] = torch.where(union > 0, (pred & true).flatten(1).sum(1).float() / union.clamp(min=1),
                                  torch.ones_like(union))  # no hair in either: a perfect match
    out["identity distance"] = identity(results, faces).cpu()
    return out


def retrieval_ranks(gallery: torch.Tensor, queries: torch.Tensor, truth: torch.Tensor,
                    chunk: int = 256) -> torch.Tensor:
    """Rank (1 = nearest) of each query's true gallery entry among gallery [N, D] by Euclidean
    distance of queries [Q, D]; ties count against the truth. truth [Q] indexes the gallery."""
    ranks = []
    for q, t in zip(queries.split(chunk), truth.split(chunk)):
        d = torch.cdist(q.double(), gallery.double())  # [q, N]
        own = d.gather(1, t[:, None])
        ranks.append((d <= own).sum(1))
    return torch.cat(ranks)


@torch.no_grad()
def hair_retrieval(people: Callable[[torch.Tensor], torch.Tensor], queries: Callable[[torch.Tensor], torch.Tensor],
                   embed: Callable[[torch.Tensor], torch.Tensor], *, n_gallery: int, n_queries: int,
                   batch: int = 250) -> Dict[str, object]:
    """The FG'21 retrieval protocol. ``people(indices [B]) -> images`` draws gallery person i
    (deterministic per index); ``queries(indices) -> images`` those people with another
    person's hair (a transfer); ``embed(images) -> [B, D]`` identity features. Queries are the
    first ``n_queries`` people. Returns top1, mean_rank and ranks [n_queries]."""
    if not 0 < n_queries <= n_gallery:
        raise ValueError("need 0 < n_queries <= n_gallery")
    gallery = torch.cat([embed(people(idx)).cpu() for idx in torch.arange(n_gallery).split(batch)])
    found = torch.cat([embed(queries(idx)).cpu() for idx in torch.arange(n_queries).split(batch)])
    ranks = retrieval_ranks(gallery, found, torch.arange(n_queries))
    return {"top1": float((ranks == 1).float().mean()), "mean_rank": float(ranks.float().mean()), "ranks": ranks,
            "n_gallery": n_gallery, "n_queries": n_queries}
