"""Routes of the cohort area."""

from django.urls import path

from spinewatch.web.cohort import views

app_name = "cohort"

urlpatterns = [
    path("", views.index, name="index"),
    path("plot.png", views.plot_png, name="plot"),
    path("table.csv", views.table_csv, name="table_csv"),
    path("data.csv", views.data_csv, name="data_csv"),
    path("results/<slug:name>.<str:fmt>", views.results_figure, name="results_figure"),
]
