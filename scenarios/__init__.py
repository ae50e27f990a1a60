"""Scenario files, command line, stress tests, backtests and exports.

The only package in trimtab that reads or writes files.
"""
