"""docs/design-notes.md's formula for dc_n/dc_k, checked against autograd on the ShowTell model's own LSTM."""

from __future__ import annotations

import torch

from captioner.config import ModelConfig
from captioner.models.showtell import ShowTell


def _gates(lstm: torch.nn.LSTM, x: torch.Tensor, h: torch.Tensor) -> tuple[torch.Tensor, ...]:
    z = lstm.weight_ih_l0 @ x + lstm.bias_ih_l0 + lstm.weight_hh_l0 @ h + lstm.bias_hh_l0
    i, f, g, o = z.chunk(4)  # PyTorch's gate order
    return torch.sigmoid(i), torch.sigmoid(f), torch.tanh(g), torch.sigmoid(o)


def test_cell_state_jacobian_formula_matches_autograd() -> None:
    torch.manual_seed(0)
    lstm = ShowTell(ModelConfig(embed=6, hidden=5), 10, 8).lstm.double()
    H = 5
    xs = torch.randn(4, 6, dtype=torch.float64)
    o_k = torch.rand(H, dtype=torch.float64)  # the output gate that made h_k (it does not depend on c_k)
    c_k = torch.randn(H, dtype=torch.float64)

    def run(c: torch.Tensor) -> torch.Tensor:
        h = o_k * torch.tanh(c)
        for x in xs:
            i, f, g, o = _gates(lstm, x, h)
            c = f * c + i * g
            h = o * torch.tanh(c)
        return c

    want = torch.autograd.functional.jacobian(run, c_k)

    # The state is (c, h): c_t depends on c_{t-2} through o_{t-1}, so chain 2H x 2H blocks, not c alone.
    w_i, w_f, w_g, w_o = lstm.weight_hh_l0.chunk(4)
    eye = torch.eye(H, dtype=torch.float64)
    jac = torch.cat([eye, torch.diag(o_k * (1 - torch.tanh(c_k) ** 2))])  # d(c_k, h_k)/dc_k, (2H, H)
    c, h = c_k, o_k * torch.tanh(c_k)
    for x in xs:
        i, f, g, o = _gates(lstm, x, h)
        dc_dh = torch.diag(c * f * (1 - f)) @ w_f + torch.diag(g * i * (1 - i)) @ w_i + torch.diag(i * (1 - g**2)) @ w_g
        c_new = f * c + i * g
        tanh_d = torch.diag(o * (1 - torch.tanh(c_new) ** 2))
        step = torch.cat(
            [
                torch.cat([torch.diag(f), dc_dh], 1),  # dc_t/dc_{t-1} = diag(f_t), dc_t/dh_{t-1}
                torch.cat(
                    [tanh_d @ torch.diag(f), torch.diag(torch.tanh(c_new) * o * (1 - o)) @ w_o + tanh_d @ dc_dh], 1
                ),
            ]
        )
        jac, c, h = step @ jac, c_new, o * torch.tanh(c_new)
    torch.testing.assert_close(jac[:H], want, rtol=1e-10, atol=1e-12)
    # one step: dc_{k+1}/dc_k = diag(f) + (dc/dh) diag(o_k (1 - tanh^2 c_k)), the form the notes give first
    i1, f1, g1, _ = _gates(lstm, xs[0], o_k * torch.tanh(c_k))
    one = torch.autograd.functional.jacobian(lambda cc: _step_c(lstm, xs[0], o_k, cc), c_k)
    d1 = (
        torch.diag(c_k * f1 * (1 - f1)) @ w_f
        + torch.diag(g1 * i1 * (1 - i1)) @ w_i
        + torch.diag(i1 * (1 - g1**2)) @ w_g
    )
    torch.testing.assert_close(one, torch.diag(f1) + d1 @ torch.diag(o_k * (1 - torch.tanh(c_k) ** 2)))


def _step_c(lstm: torch.nn.LSTM, x: torch.Tensor, o_k: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
    i, f, g, _ = _gates(lstm, x, o_k * torch.tanh(c))
    return f * c + i * g
