"""The dialect's paths (shared/spec/dialects.md, simplejwt) on simplejwt's
own views, and one view protected by simplejwt's JWTAuthentication, for a
resource server's view of a token."""

from django.urls import path
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView
from rest_framework_simplejwt.authentication import JWTAuthentication
from rest_framework_simplejwt.views import (
    TokenBlacklistView,
    TokenObtainPairView,
    TokenRefreshView,
    TokenVerifyView,
)


class WhoAmI(APIView):
    """The user that the bearer token resolves to."""

    authentication_classes = [JWTAuthentication]
    permission_classes = [IsAuthenticated]

    def get(self, request):
        return Response({"id": request.user.id, "username": request.user.username})


urlpatterns = [
    path("api/v1/token/", TokenObtainPairView.as_view()),
    path("api/v1/token/refresh/", TokenRefreshView.as_view()),
    path("api/v1/token/verify/", TokenVerifyView.as_view()),
    path("api/v1/token/blacklist/", TokenBlacklistView.as_view()),
    path("whoami/", WhoAmI.as_view()),
]
