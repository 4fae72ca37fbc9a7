"""pytorch/examples' time_sequence_prediction, smaller: two stacked LSTMCells learn sine waves,
trained by L-BFGS with a closure (torch.double, chunk, stack, MSELoss, future steps fed back).
The same code runs on cygrad and torch from the same weights; losses and parameters track
torch's through the L-BFGS steps."""

import numpy as np
import pytest

import cygrad


def build(lib, hidden=12):
    nn = lib.nn

    class Sequence(nn.Module):
        def __init__(self):
            super().__init__()
            self.lstm1 = nn.LSTMCell(1, hidden)
            self.lstm2 = nn.LSTMCell(hidden, hidden)
            self.linear = nn.Linear(hidden, 1)

        def forward(self, input, future=0):
            outputs = []
            h_t = lib.zeros(input.size(0), hidden, dtype=lib.double)
            c_t = lib.zeros(input.size(0), hidden, dtype=lib.double)
            h_t2 = lib.zeros(input.size(0), hidden, dtype=lib.double)
            c_t2 = lib.zeros(input.size(0), hidden, dtype=lib.double)
            for input_t in input.chunk(input.size(1), dim=1):
                h_t, c_t = self.lstm1(input_t, (h_t, c_t))
                h_t2, c_t2 = self.lstm2(h_t, (h_t2, c_t2))
                output = self.linear(h_t2)
                outputs += [output]
            for _ in range(future):  # if we should predict the future
                h_t, c_t = self.lstm1(output, (h_t, c_t))
                h_t2, c_t2 = self.lstm2(h_t, (h_t2, c_t2))
                output = self.linear(h_t2)
                outputs += [output]
            return lib.cat(outputs, dim=1)

    return Sequence().double()


def _data():
    t, length, n = 20, 30, 6
    x = np.empty((n, length), "int64")
    x[:] = np.array(range(length)) + np.random.default_rng(2).integers(-4 * t, 4 * t,
                                                                      n).reshape(n, 1)
    return np.sin(x / 1.0 / t).astype("float64")


def test_lbfgs_training_tracks_torch():
    torch = pytest.importorskip("torch")
    data = _data()
    torch.manual_seed(0)
    theirs = build(torch)
    ours = build(cygrad)
    ours.load_state_dict({k: v.detach().numpy() for k, v in theirs.state_dict().items()})
    runs = {}
    for lib, seq in ((torch, theirs), (cygrad, ours)):
        input, target = lib.from_numpy(data[3:, :-1]), lib.from_numpy(data[3:, 1:])
        criterion = lib.nn.MSELoss()
        optimizer = lib.optim.LBFGS(seq.parameters(), lr=0.8, max_iter=6)
        losses = []
        for _ in range(2):
            def closure(optimizer=optimizer, seq=seq, input=input, target=target,
                        criterion=criterion):
                optimizer.zero_grad()
                loss = criterion(seq(input), target)
                loss.backward()
                return loss

            losses.append(float(optimizer.step(closure).detach()))
        with lib.no_grad():
            future = 5
            test_input = lib.from_numpy(data[:3, :-1])
            pred = seq(test_input, future=future)
        state = optimizer.state[next(iter(seq.parameters()))]
        runs[lib.__name__] = (losses, pred.numpy(), state)
    (losses, pred, state), (tlosses, tpred, tstate) = runs["cygrad"], runs["torch"]
    np.testing.assert_allclose(losses, tlosses, rtol=1e-8)
    np.testing.assert_allclose(pred, tpred, rtol=1e-6, atol=1e-8)
    assert state["func_evals"] == tstate["func_evals"] and state["n_iter"] == tstate["n_iter"]
