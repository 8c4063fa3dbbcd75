"""Bytes in: WFDB, CSV and EDF recordings read from memory, validated, one lead picked."""
