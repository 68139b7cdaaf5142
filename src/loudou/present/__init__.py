"""Presentation, apart from the analyses: how results are shown (terminal tables, CSV rows), in
English or Chinese. Renderers are registered per result type (see :mod:`loudou.present.views`)."""
