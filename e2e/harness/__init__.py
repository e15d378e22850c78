"""Test harness pieces that play the parts a real cluster's nodes would: see :mod:`e2e.harness.kubelet`."""
