"""PDF reports for the chart and the tumour board (WeasyPrint)."""
