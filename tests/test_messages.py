"""Message templates: what varies by example or machine is blanked, wording and dtype names are kept."""

import pytest

from specs.engine.messages import template


@pytest.mark.parametrize(
    "message, expected",
    [
        (
            "modified by an inplace operation: [torch.FloatTensor [2, 3]] is at version 1; expected version 0 instead.",
            "modified by an inplace operation: [torch.FloatTensor [#]] is at version #; expected version # instead.",
        ),
        ("output 0 of ExpBackward0", "output # of ExpBackward#"),
        (
            "The size of tensor a (3) must match the size of tensor b (4) at non-singleton dimension 1",
            "The size of tensor a (#) must match the size of tensor b (#) at non-singleton dimension #",
        ),
        (
            "Mismatch in shape: grad_output[0] has a shape of torch.Size([2, 3]) and output[0] has a shape of (4, 5).",
            "Mismatch in shape: grad_output[#] has a shape of [#] and output[#] has a shape of (#).",
        ),
        (
            "Anomaly detected (Triggered internally at /pytorch/torch/csrc/autograd/python_anomaly_mode.cpp:85.)",
            "Anomaly detected",
        ),
        (
            "hook <function f at 0x7f3a2b9c> registered from /usr/lib/python3.11/site-packages/torch/nn/modules/module.py:1830",
            "hook <function f at 0x#> registered from <path>",
        ),
        ("node 3fa9c0b1d2e4f5a6 freed", "node <id> freed"),
        ("expected dtype float64 but got float32, not Int64", "expected dtype float64 but got float32, not Int64"),
        ("value 1.5e-07 and -3 and 2.0", "value # and # and #"),
        ("  spaces\n  and\tnewlines  ", "spaces and newlines"),
        ("numerical:tensor([[ 1.9332, 0.0000],\n        [ 0.0000, 1.4759]])", "numerical:tensor([[#, #], [#, #]])"),
    ],
)
def test_noise_is_blanked_and_wording_kept(message, expected):
    assert template(message) == expected


def test_messages_differing_only_in_noise_share_a_template():
    a = "output 0 of MulBackward0 is at version 3 at 0x7f00aa (Triggered internally at /a/b/c.cpp:1.)"
    b = "output 1 of MulBackward1 is at version 9 at 0x5500bb (Triggered internally at /x/y/z.cpp:99.)"
    assert template(a) == template(b)
    assert template("is at version 3") != template("has version 3")


def test_template_is_idempotent():
    message = "size [2, 3] at 0xdeadbeef in /opt/torch/lib.so:12, float32"
    assert template(template(message)) == template(message)
