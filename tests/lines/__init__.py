"""Tests of `appliance.lines`: the line protocol, board profiles and the drivers."""
