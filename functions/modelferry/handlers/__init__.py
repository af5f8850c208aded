"""Lambda entry points: each parses its event, calls one domain function, returns JSON-ready data."""
