"""Pure-Python tests of alexnet_trace (no Swift needed): `python python/tests/test_producer.py`
from the repository root, with a Python that has torch and numpy. The Swift tests
(PythonProducerTests) check the traces with `alexnet check` itself."""
import json
import os
import sys
import tempfile
import unittest

import torch
import torch.nn as nn

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "python"))
import alexnet_trace as at  # noqa: E402

FIXTURE = os.path.join(ROOT, "Fixtures", "oracle", "net", "paper-narrow-f64-sgd-paper.safetensors")
NARROW = os.path.join(ROOT, "Fixtures", "oracle", "paper-narrow.json")
MINI = os.path.join(ROOT, "Fixtures", "oracle", "mini-towers.json")


class ProducerTests(unittest.TestCase):
    def test_canonical_spec_text_is_the_fixtures(self):
        _, meta = at.read_safetensors(FIXTURE)
        self.assertEqual(at.spec_json(NARROW), meta["spec"])
        with open(NARROW, encoding="utf-8") as f:
            self.assertEqual(at.spec_json(json.load(f)), meta["spec"])

    def test_a_committed_pytorch_fixture_is_reproduced_from_its_own_weights_input_and_masks(self):
        T, meta = at.read_safetensors(FIXTURE)
        model = at.module_from_spec(NARROW, dtype=torch.float64, init=None)
        with torch.no_grad():
            for name, p in model.named_parameters():
                p.copy_(T[f"param.{name}"])
        for name, m in model.named_children():
            if isinstance(m, at.MaskDropout):
                m.next_mask = T[f"mask.{name}"]
        ours, ours_meta = at.record_step(model, None, T["input"], T["labels"], sgd_form=meta["sgd_form"],
                                         lr=float(meta["learning_rate"]), momentum=float(meta["momentum"]),
                                         weight_decay=float(meta["weight_decay"]), grad_input=True)
        self.assertEqual(ours_meta["spec"], meta["spec"])
        compared = 0
        for name, ref in T.items():
            if name in ours and ref.is_floating_point():
                diff = (ours[name] - ref).abs().max().item()
                scale = ref.abs().max().item() or 1.0
                self.assertLessEqual(diff, 1e-12 * scale, name)
                compared += 1
        self.assertGreater(compared, 70)

    def test_record_step_leaves_the_model_as_it_was_and_swaps_dropout_back(self):
        model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(inplace=True), nn.Dropout(0.5), nn.Linear(4 * 6 * 6, 5))
        model[3] = at.FlattenLinear(4 * 6 * 6, 5)
        spec = {"name": "t", "input": [3, 8, 8], "layers": [
            {"name": "conv1", "type": "conv", "outputs": 4, "kernel": 3},
            {"name": "relu1", "type": "relu"},
            {"name": "drop1", "type": "dropout", "rate": 0.5, "scaling": "inverted"},
            {"name": "fc2", "type": "linear", "outputs": 5}]}
        layer_map = {"conv1": "0", "relu1": "1", "drop1": "2", "fc2": "3"}
        before = {k: v.clone() for k, v in model.state_dict().items()}
        model.eval()
        T, meta = at.record_step(model, spec, torch.randn(2, 3, 8, 8), [0, 4], layer_map=layer_map)
        self.assertTrue(all(torch.equal(before[k], v) for k, v in model.state_dict().items()))
        self.assertIs(type(model[2]), nn.Dropout)
        self.assertTrue(model[1].inplace)
        self.assertFalse(model.training)
        self.assertTrue(all(p.grad is None for p in model.parameters()))
        mask = T["mask.drop1"]
        self.assertTrue(bool(((mask == 0) | (mask == 1)).all()))
        # forward.relu1 is the ReLU's output, recorded before the dropout could change it.
        self.assertTrue(torch.equal(T["forward.relu1"], T["forward.conv1"].clamp(min=0)))
        self.assertEqual(meta["mode"], "training")
        self.assertEqual(meta["dtype"], "f32")

    def test_updated_pytorch_form_is_torch_optim_sgds_first_step(self):
        model = at.module_from_spec(MINI, dtype=torch.float64, seed=2)
        T, _ = at.record_step(model, None, torch.randn(2, 3, 35, 35, dtype=torch.float64) * 10, [1, 2],
                              sgd_form="pytorch", lr=0.1, momentum=0.9, weight_decay=5e-4)
        with torch.no_grad():
            for name, p in model.named_parameters():
                p.grad = T[f"grad.{name}"].clone()
        torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=5e-4).step()
        for name, p in model.named_parameters():
            self.assertTrue(torch.allclose(p.detach(), T[f"updated.{name}"], rtol=1e-14, atol=1e-16), name)

    def test_record_steps_pytorch_form_is_torch_optim_sgds_trajectory(self):
        """Several steps: the recorded updates, with the velocity carried and a schedule, are
        torch.optim.SGD's own trajectory on the same batches and masks; the model is left as it was."""
        steps_spec = os.path.join(ROOT, "Fixtures", "oracle", "steps", "tiny-steps.json")
        model = at.module_from_spec(steps_spec, dtype=torch.float64, seed=4)
        before = {n: p.detach().clone() for n, p in model.named_parameters()}
        g = torch.Generator().manual_seed(1)
        batches = [(torch.randn(2, 3, 8, 8, generator=g, dtype=torch.float64) * 10, [t % 10, (t + 3) % 10])
                   for t in range(3)]
        rates = [0.05, 0.02, 0.01]
        T, meta = at.record_steps(model, None, batches, sgd_form="pytorch", lr=rates, momentum=0.9, weight_decay=5e-4)
        self.assertEqual((meta["format"], meta["steps"], meta["learning_rates"]), ("alexnet-trace/2", "3", "0.05,0.02,0.01"))
        for name, p in model.named_parameters():
            self.assertTrue(torch.equal(p.detach(), before[name]), name)
        optimiser = torch.optim.SGD(model.parameters(), lr=rates[0], momentum=0.9, weight_decay=5e-4)
        for t, (images, labels) in enumerate(batches, 1):
            for name, m in model.named_children():
                if isinstance(m, at.MaskDropout):
                    m.next_mask = T[f"step{t}.mask.{name}"]
            for group in optimiser.param_groups:
                group["lr"] = rates[t - 1]
            optimiser.zero_grad()
            model.train()
            torch.nn.functional.cross_entropy(model(images), torch.tensor(labels)).backward()
            optimiser.step()
            for name, p in model.named_parameters():
                self.assertTrue(torch.allclose(p.detach(), T[f"step{t}.updated.{name}"], rtol=1e-13, atol=1e-15),
                                f"step {t} {name}")

    def test_the_mistakes_a_producer_can_make_are_refused(self):
        model = nn.Sequential(nn.Linear(4, 3))
        spec = {"name": "t", "input": [1, 2, 2], "layers": [{"name": "fc1", "type": "linear", "outputs": 3}]}
        with self.assertRaisesRegex(ValueError, "no module 'fc1'"):
            at.record_step(model, spec, torch.randn(2, 1, 2, 2), [0, 1])
        with self.assertRaisesRegex(ValueError, "the spec's input"):
            at.record_step(model, spec, torch.randn(2, 4), [0, 1], layer_map={"fc1": "0"})
        drop = nn.Sequential(nn.Dropout(0.5), nn.Linear(4, 3))
        spec2 = {"name": "t", "input": [4, 1, 1], "layers": [
            {"name": "d", "type": "dropout", "rate": 0.5, "scaling": "paper"},
            {"name": "fc1", "type": "linear", "outputs": 3}]}
        with self.assertRaisesRegex(ValueError, "scales inverted"):
            at.record_step(drop, spec2, torch.randn(2, 4, 1, 1), [0, 1], layer_map={"d": "0", "fc1": "1"})

    def test_plant_fault_and_the_safetensors_round_trip(self):
        T = {"forward.conv2": torch.zeros(2, 3, 4, 5), "labels": torch.tensor([1, 2])}
        self.assertEqual(at.plant_fault(T, "forward.conv2[1,2,3,4]=0.5")[1], 119)
        self.assertEqual(at.plant_fault(T, "forward.conv2[7]=-1")[1:], (7, 0.0, -1.0))
        with self.assertRaises(ValueError):
            at.plant_fault(T, "forward.conv2[2,0,0,0]=1")
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "t.safetensors")
            at.write_trace(path, T, {"format": at.FORMAT})
            back, meta = at.read_safetensors(path)
        self.assertEqual(meta, {"format": at.FORMAT})
        self.assertTrue(torch.equal(back["forward.conv2"], T["forward.conv2"]))
        self.assertEqual(back["labels"].dtype, torch.int64)

    def test_the_command_line_writes_a_trace(self):
        from alexnet_trace.__main__ import main
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "t.safetensors")
            self.assertEqual(main([MINI, "-o", path, "--tower-tensors", "--plant-fault", "forward.conv2[3]=1"]), 0)
            T, meta = at.read_safetensors(path)
            self.assertEqual(meta["towers"], "2")
            self.assertIn("PLANTED FAULT", meta["producer"])
            self.assertIn("tower1.updated.fc6.weight", T)
            self.assertEqual(main([MINI, "-o", path, "--plant-fault", "nosuch[0]=1"]), 2)


if __name__ == "__main__":
    unittest.main()
