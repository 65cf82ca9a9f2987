"""``python -m station.gui.cloud TRIAL INDEX``: one frame's point cloud in an open3d window.

Run as its own process by the viewer: open3d's window has its own event loop and GL context,
which must not block (or share a thread with) the Qt window.
"""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    """``TRIAL INDEX [PNG]``: show the cloud; with PNG, render it once to that file and exit."""
    import open3d as o3d

    from station.gui.media import TrialMedia, frame_cloud

    args = list(argv if argv is not None else sys.argv[1:])
    trial, index = args[:2]
    png = args[2] if len(args) > 2 else None
    with TrialMedia(trial, cache_frames=1) as media:
        i = int(index)
        cloud = frame_cloud(media, i)
        title = f"{media.name} frame {media.number(i)} ({len(cloud.points)} points)"
    cloud.transform([[1, 0, 0, 0], [0, -1, 0, 0], [0, 0, -1, 0], [0, 0, 0, 1]])  # camera y down -> screen up
    if png is None:
        o3d.visualization.draw_geometries([cloud], window_name=title, width=960, height=720)
        return 0
    vis = o3d.visualization.Visualizer()
    vis.create_window(window_name=title, width=960, height=720, visible=False)
    vis.add_geometry(cloud)
    view = vis.get_view_control()
    view.rotate(110.0, -50.0)  # an oblique view: the face's relief, not a flat photo
    view.set_zoom(0.7)
    vis.poll_events()
    vis.update_renderer()
    vis.capture_screen_image(str(png), do_render=True)
    vis.destroy_window()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
