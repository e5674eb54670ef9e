from django.conf import settings
from django.conf.urls.static import static
from django.contrib import admin
from django.contrib.auth.views import LoginView
from django.urls import include, path
from django.utils.translation import gettext_lazy as _

from api.views import api
from ops import metrics as ops_metrics
from panel import views as panel_views
from tenants.throttle import ThrottledAdminAuthenticationForm, ThrottledAuthenticationForm

admin.site.login_form = ThrottledAdminAuthenticationForm
admin.site.site_header = _("Totem administration")
admin.site.site_title = _("Totem")

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/v1/", api.urls),
    path(
        "accounts/login/",
        LoginView.as_view(authentication_form=ThrottledAuthenticationForm),
        name="login",
    ),
    path("accounts/", include("django.contrib.auth.urls")),
    path("t/<slug:slug>/pagamentos/", include("payments.urls")),
    path("t/<slug:slug>/nfse/", include("fiscal.urls")),
    path("", panel_views.home, name="panel_home"),
    path("t/<slug:slug>/painel/", include("panel.urls")),
    path("t/<slug:slug>/gestao/", include("ops.urls")),
    path("metrics", ops_metrics.metrics, name="metrics"),
    path("t/<slug:slug>/totem/", include("totem.kiosk_urls")),
    path("t/<slug:slug>/", include("messaging.urls")),
    path("t/<slug:slug>/", include("totem.urls")),
] + static(settings.MEDIA_URL, document_root=settings.MEDIA_ROOT)
