"""Plotly figure builders, testable without Streamlit."""
