"""The hostile-input catalogue of issue 10: CLI and API cases with the culprit named."""
