"""Measures of hairstyle transfer: against true images, and the seed's identity retrieval protocol.

- ``naive_transfer``: the baseline, the hair image's hair pixels pasted onto the face image.
- ``score_against_truth``: PSNR, LPIPS, hair IoU (a segmenter's map of the result against the
  true label map) and identity distance to the face image, per pair.
- ``retrieval_ranks`` / ``hair_retrieval``: the FG'21 protocol: a gallery of N generated people;
  queries are transfers onto some of them (another person's hair, another pose); each query is
  ranked against the whole gallery by identity distance, and the rank of its own person counts
  (top-1 share, mean rank; the paper: 98.3 % and 1.143 with ArcFace over 100k images).
- ``RetrievalSet``: that protocol's people and transfers on the embedded domain (the benchmark
  and ``python -m semedit eval --preset hair``, which shards it, draw the same ones).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Dict

import torch

from .. import segmentation as L
from ..encoders import encode
from ..hair.transfer import blend_into_face, hair_mask, identity_steps
from ..latents import Latent, synthesize
from ..metrics import psnr
from ..synth.params import LATENT_DIM, MAX_YAW, latent_with, params_from_latent
from ..synth.render import render

#: images [B, 3, R, R] in [-1, 1] for gallery people (or queries) by index [B]
Draw = Callable[[torch.Tensor], torch.Tensor]
#: the retrieval row of a generator's encoder reconstructing the face image (no transfer)
ENCODER_REFERENCE = "reference: the generator's encoder on the face image (no hair changed)"
#: the network's transfer alpha-blended into the face image (the face image's pixels outside the hair)
NETWORK_BLENDED = "FG'21 network + alpha blend"
#: the network's code refined towards the face image's identity (``hair.transfer.identity_steps``)
NETWORK_IDENTITY = "FG'21 network + identity steps"
#: the network's transfer refined by identity steps read on its blend into the face image, so blended
NETWORK_IDENTITY_BLENDED = "FG'21 network + identity steps + alpha blend"

def naive_transfer(face: torch.Tensor, hair: torch.Tensor, hair_labels: torch.Tensor) -> torch.Tensor:
    """The hair image's hair pixels (labels [B, R, R]) over the face image: [B, 3, R, R]."""
    m = (hair_labels == L.HAIR).float()[:, None].to(face)
    return hair.to(face) * m + face * (1 - m)


def hair_iou(labels: torch.Tensor, other: torch.Tensor) -> torch.Tensor:
    """Per image [B]: IoU of the hair class in two label maps [B, R, R] (1 where neither has hair)."""
    a, b = labels.cpu() == L.HAIR, other.cpu() == L.HAIR
    union = (a | b).flatten(1).sum(1).float()
    return torch.where(union > 0, (a & b).flatten(1).sum(1).float() / union.clamp(min=1), torch.ones_like(union))


@torch.no_grad()
def score_against_truth(results: torch.Tensor, truth: torch.Tensor, truth_labels: torch.Tensor,
                        faces: torch.Tensor, *, perceptual, segment, identity) -> Dict[str, torch.Tensor]:
    """Per pair [B]: PSNR and LPIPS to the true image, hair IoU of ``segment(results)`` against the
    true labels [B, R, R], identity distance to the face image (all images [B, 3, R, R])."""
    out = {"PSNR": torch.tensor([psnr(r[None], t[None]) for r, t in zip(results, truth)]),
           "LPIPS": perceptual(results, truth).cpu()}
    out["hair IoU"] = hair_iou(segment(results), truth_labels)
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
def hair_retrieval(people: Draw, queries: Dict[str, Draw], readers: Dict[str, Callable[[torch.Tensor], torch.Tensor]],
                   *, n_gallery: int, n_queries: int, batch: int = 250) -> Dict[str, Dict[str, dict]]:
    """The FG'21 retrieval protocol in one process. ``people(indices [B]) -> images`` draws gallery
    person i (deterministic per index); each of ``queries`` {name: draw} gives those people with
    another person's hair (a transfer); each of ``readers`` {reader: images -> [B, D] identity
    features} ranks every query (each image is drawn once, read by all). Queries are the first
    ``n_queries`` people. Returns {reader: {transfer: {top1, mean_rank, ranks [n_queries]}}}."""
    if not 0 < n_queries <= n_gallery:
        raise ValueError("need 0 < n_queries <= n_gallery")

    def read(draw: Draw, n: int) -> Dict[str, torch.Tensor]:
        chunks = [draw(idx) for idx in torch.arange(n).split(batch)]
        return {r: torch.cat([embed(x).cpu() for x in chunks]) for r, embed in readers.items()}
    gallery = read(people, n_gallery)
    found = {name: read(draw, n_queries) for name, draw in queries.items()}
    return {r: retrieval_summary(gallery[r], {name: f[r] for name, f in found.items()}) for r in readers}


@dataclass(frozen=True)
class RetrievalSet:
    """The protocol's people on the embedded domain, a pure function of (n_gallery, n_queries,
    seed): gallery person i is the generator's image of ``z_people[i]``; query i is person i with
    the hair of another person (``z_other[i]``) whose head is turned to a random yaw
    (``z_hair[i]``); ``z_truth[i]`` is the true result's latent (for a generator paired with the
    renderer). Latents are renderer latents [N, 64]. A generator whose z is not 64-wide (one not
    paired with the renderer) draws its people and hair donors from its own latents, a fixed draw
    from ``seed`` (``latents_for``)."""

    z_people: torch.Tensor
    z_hair: torch.Tensor
    z_truth: torch.Tensor
    seed: int = 0

    @classmethod
    def draw(cls, n_gallery: int, n_queries: int, seed: int) -> "RetrievalSet":
        g = torch.Generator().manual_seed(seed)
        z_people = torch.randn(n_gallery, LATENT_DIM, generator=g)
        z_other = torch.randn(n_queries, LATENT_DIM, generator=g)
        yaw = (torch.rand(n_queries, generator=g) * 2 - 1) * MAX_YAW * 0.9
        return cls(z_people, latent_with(z_other, yaw=yaw), latent_with(z_people[:n_queries], hair_of=z_other),
                   seed=seed)

    def latents_for(self, G) -> tuple:
        """(gallery people [N, z_dim], hair donors [Q, z_dim]) in G's latent space: the renderer
        latents when G reads 64-wide ones, else G's own latents drawn from the set's seed (the
        donors are then other samples, at whatever pose G gives them)."""
        z_dim = G.config.z_dim
        if z_dim == LATENT_DIM:
            return self.z_people, self.z_hair
        g = torch.Generator().manual_seed(self.seed)
        return (torch.randn(len(self.z_people), z_dim, generator=g),
                torch.randn(len(self.z_hair), z_dim, generator=g))

    def people(self, G) -> Draw:
        return _drawer(G, self.latents_for(G)[0])

    def hair_donors(self, G) -> Draw:
        """G's images of the queries' hair donors (turned, for a generator paired with the renderer)."""
        return _drawer(G, self.latents_for(G)[1])

    def rendered(self, size: int = 64) -> tuple:
        """(gallery people, true results) drawn by the renderer at ``size`` px: the protocol with a
        perfect generator, which bounds what the identity model itself can tell apart."""
        return _rendered(self.z_people, size), _rendered(self.z_truth, size)

    def transfers(self, G, *, net=None, segment=None, paired: bool = False, encoder=None,
                  identity=None) -> Dict[str, Draw]:
        """{transfer name: draw(query indices) -> images}: the FG'21 network ``net`` (when given;
        with a ``segment`` function also blended into the face image; with an ``identity`` model,
        (x, y) -> distances [N] on G's device, also refined by ``identity_steps``, holding the hair
        ``segment`` finds, and blended after steps that read identity on the blend), the naive paste
        (with ``segment``), for a generator ``paired`` with the renderer the ceiling, G's own image of
        the true latent, and with an ``encoder`` of G the reference ``ENCODER_REFERENCE``: its
        reconstruction of the face image, no hair changed (what an encoder-based transfer keeps of a
        person at best, short of a better encoder)."""
        people, hair_of = self.people(G), self.hair_donors(G)
        out: Dict[str, Draw] = {}
        if paired:
            out["ceiling: G of the true latent"] = _drawer(G, self.z_truth)
        if encoder is not None:
            def by_encoder(idx: torch.Tensor) -> torch.Tensor:
                with torch.no_grad():
                    return encode(encoder, G, people(idx).to(G.w_avg.device))[1].clamp(-1, 1).cpu()
            out[ENCODER_REFERENCE] = by_encoder
        if net is not None:
            def network_on(faces: torch.Tensor, idx: torch.Tensor, steered: bool = False,
                           face_labels=None) -> torch.Tensor:
                """The network's transfer of the queries' donors' hair onto ``faces`` (their people),
                ``steered`` by identity steps (the hair ``segment`` finds in its first image held;
                identity read on the blend when given the faces' ``face_labels``)."""
                dev = G.w_avg.device
                faces = faces.to(dev)
                with torch.no_grad():
                    codes = net.to(dev)(faces, hair_of(idx).to(dev))
                if steered:
                    codes = identity_steps(G, codes, faces, identity, segment, face_labels=face_labels)
                with torch.no_grad():
                    return synthesize(G, Latent("w+", codes)).clamp(-1, 1).cpu()

            def blended(steered: bool) -> Draw:
                def draw(idx: torch.Tensor) -> torch.Tensor:
                    faces = people(idx)  # drawn once for the transfer and the blend
                    face_labels = segment(faces)
                    results = network_on(faces, idx, steered, face_labels)
                    result_labels = segment(results)
                    return torch.cat([blend_into_face(results[i:i + 1], faces[i:i + 1], face_labels[i],
                                                      hair_mask(result_labels[i]))[0] for i in range(len(idx))])
                return draw
            out["FG'21 network"] = lambda idx: network_on(people(idx), idx)
            if identity is not None:
                out[NETWORK_IDENTITY] = lambda idx: network_on(people(idx), idx, steered=True)
            if segment is not None:
                out[NETWORK_BLENDED] = blended(False)
                if identity is not None:
                    out[NETWORK_IDENTITY_BLENDED] = blended(True)
        if segment is not None:
            def by_naive(idx: torch.Tensor) -> torch.Tensor:
                hair = hair_of(idx)
                return naive_transfer(people(idx), hair, segment(hair))
            out["naive paste"] = by_naive
        return out


def _drawer(G, z: torch.Tensor) -> Draw:
    @torch.no_grad()
    def draw(idx: torch.Tensor) -> torch.Tensor:
        return G(z[idx].to(G.w_avg.device), fused=False).clamp(-1, 1).cpu()
    return draw


def _rendered(z: torch.Tensor, size: int) -> Draw:
    def draw(idx: torch.Tensor) -> torch.Tensor:
        return render(params_from_latent(z[idx]), size).image
    return draw


#: the paper's figures (FFHQ, ArcFace, a 100k gallery and 1k queries)
PAPER_RETRIEVAL = {"top1": 0.983, "mean_rank": 1.143}


def retrieval_summary(gallery: torch.Tensor, queries: Dict[str, torch.Tensor]) -> Dict[str, dict]:
    """{transfer: {top1, mean_rank, ranks}} of query embeddings [Q, D] (query i is gallery person
    i) against gallery embeddings [N, D]."""
    out = {}
    for name, q in queries.items():
        ranks = retrieval_ranks(gallery, q, torch.arange(len(q)))
        out[name] = {"top1": float((ranks == 1).float().mean()), "mean_rank": float(ranks.float().mean()),
                     "ranks": ranks}
    return out
