from django.conf import settings
from django.conf.urls.static import static
from django.contrib import admin
from django.urls import include, path

from tenants import metrics as ops_metrics
from tickets import views as panel_views

urlpatterns = [
    path("admin/", admin.site.urls),
    path("accounts/", include("django.contrib.auth.urls")),
    path("t/<slug:slug>/pagamentos/", include("payments.urls")),
    path("", panel_views.home, name="panel_home"),
    path("t/<slug:slug>/painel/", include("tickets.urls")),
    path("t/<slug:slug>/gestao/", include("tenants.urls")),
    path("metrics", ops_metrics.metrics, name="metrics"),
    path("t/<slug:slug>/totem/", include("totem.kiosk_urls")),
    path("t/<slug:slug>/", include("totem.urls")),
] + static(settings.MEDIA_URL, document_root=settings.MEDIA_ROOT)
