"""Video rooms behind a small gateway: Amazon Chime SDK meetings in AWS, a local adapter otherwise."""
from __future__ import annotations

from typing import Any, Protocol

from chalicelib.core.settings import get_settings


class VideoGateway(Protocol):
    def join(self, booking_id: str, user_id: str, role: str) -> dict[str, Any]: ...


class LocalVideoGateway:
    """A deterministic room per visit and a per-person signed join token; no media server."""

    def join(self, booking_id: str, user_id: str, role: str) -> dict[str, Any]:
        from chalicelib.core.crypto import keyed_hash

        meeting = keyed_hash("video-room", booking_id)[:24]
        token = keyed_hash("video-join", booking_id, user_id)[:32]
        base = get_settings().public_base_url.rstrip("/")
        return {"provider": "local", "meeting_id": meeting, "attendee": {"role": role, "join_token": token},
                "join_url": f"{base}/video/{meeting}?token={token}"}


class ChimeVideoGateway:
    """Amazon Chime SDK meetings: one meeting per visit (idempotent by the booking id)."""

    def join(self, booking_id: str, user_id: str, role: str) -> dict[str, Any]:
        from chalicelib.core import aws
        from chalicelib.core.errors import AppError

        client = aws.client("chime-sdk-meetings")
        try:
            meeting = client.create_meeting(ClientRequestToken=booking_id, ExternalMeetingId=booking_id,
                                            MediaRegion=get_settings().aws_region)["Meeting"]
            attendee = client.create_attendee(MeetingId=meeting["MeetingId"], ExternalUserId=user_id)["Attendee"]
        except Exception as exc:
            raise AppError(code="video_unavailable", status=503, headers={"Retry-After": "15"}) from exc
        return {"provider": "chime", "meeting_id": meeting["MeetingId"],
                "meeting": {k: meeting.get(k) for k in ("MeetingId", "MediaRegion", "MediaPlacement")},
                "attendee": {"role": role, "attendee_id": attendee["AttendeeId"], "join_token": attendee["JoinToken"]}}


def build_video_gateway(settings: Any) -> VideoGateway:
    """The gateway settings choose (built once by the composition root, ``chalicelib.bootstrap``)."""
    return ChimeVideoGateway() if settings.video_gateway == "chime" else LocalVideoGateway()
