"""Ending one RTSP media cleanly while the server goes on (a lost camera, a changed file).

``watch_media`` is the RTSP server's one hook: it arms what applies to a new media.

EOS goes down the media's payloaders, so rtpbin sends RTCP BYE and clients end their stream
(rtspsrc posts EOS, ffmpeg exits 0). Half a second later the clients still connected to it are
closed and the media is unprepared, which takes it out of the factory's cache: the next request
builds a fresh media instead of joining a dead one.
"""

from __future__ import annotations

from typing import Any

from gi.repository import GLib, Gst, GstRtspServer  # noqa: I001 - after runtime's require

BYE_DELAY_MS = 500


def close_media_clients(server: GstRtspServer.RTSPServer, media: Any) -> int:
    """Close every client of ``server`` with a session on ``media``; returns how many."""
    keep = GstRtspServer.RTSPFilterResult.KEEP
    closing: list[Any] = []

    def on_client(_server: Any, client: Any, *_a: Any) -> Any:
        def on_session(_client: Any, session: Any, *_b: Any) -> Any:
            medias: list[Any] = []

            def collect(_s: Any, sm: Any, *_c: Any) -> Any:
                medias.append(sm.get_media())
                return keep

            session.filter(collect)
            if any(m == media for m in medias) and client not in closing:
                closing.append(client)
            return keep

        client.session_filter(on_session)
        return keep

    server.client_filter(on_client)
    for client in closing:
        client.close()
    return len(closing)


def send_eos(element: Gst.Element) -> None:
    """EOS into each payloader (``pay0``, ``pay1`` …) of a media's bin.

    A looping demuxer told EOS by its downstream would loop at full speed (SEGMENT_DONE, seek,
    EOS …) until the media is gone: its source pads are blocked first, so it just waits.
    """
    demux = element.get_by_name("demux")
    if demux is not None:
        for pad in demux.srcpads:
            pad.add_probe(Gst.PadProbeType.BLOCK_DOWNSTREAM,
                          lambda *_: Gst.PadProbeReturn.OK)
    i = 0
    while (pay := element.get_by_name(f"pay{i}")) is not None:
        pay.get_static_pad("sink").send_event(Gst.Event.new_eos())
        i += 1


def close_later(server: GstRtspServer.RTSPServer, media: Any,
                context: GLib.MainContext) -> None:
    """After the BYE had its moment: close ``media``'s clients and unprepare it."""

    def close() -> bool:
        close_media_clients(server, media)
        media.unprepare()
        return GLib.SOURCE_REMOVE

    source = GLib.timeout_source_new(BYE_DELAY_MS)
    source.set_callback(lambda *_: close())
    source.attach(context)


def watch_media(media: Any, element: Any, mount: str, server: GstRtspServer.RTSPServer,
                context: GLib.MainContext) -> None:
    """Arm the endings that apply to a new media of ``mount`` (RTSP server hook)."""
    relay = getattr(element, "relay", None)
    if relay is not None:  # a relay media ends when its camera stays away past the grace
        from framecast.gst.relay import end_media_after_outage

        end_media_after_outage(relay, media, server, context)
    stamp = getattr(element, "file_stamp", None)
    info = getattr(element, "info", None)
    if stamp is not None and info is not None:  # a file media ends if its file changes
        from framecast.gst.filewatch import watch_file

        watch_file(media, element, stamp, info.path, mount, server, context)
