"""Widgets of the app: a table and a log view that render only visible rows, a braille chart."""
