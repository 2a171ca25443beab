"""The anatomy of the synthetic CT slices (:mod:`.ct_synthetic`): the spine and the three body regions.

Each function paints one structure or one region's organs on a
:class:`~._ct_canvas.Canvas`; structures, tissues and HU ranges are those of
:mod:`.ct_synthetic`'s module docstring.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F

from ._ct_canvas import TISSUE_HU, Body, Canvas, Draws, Window, gaussian_field


class Spine:
    """Where the vertebra sits (drawn first: the aorta and kidneys are placed relative to it)."""

    def __init__(self, draws: Draws, body: Body, region: str, scale: float) -> None:
        self.kind = "sacrum" if region == "pelvis" and draws.chance(0.5) else "vertebra"
        lumbar = region != "thorax"
        self.a = draws.uniform(18.0, 25.0) if lumbar else draws.uniform(13.0, 18.0)
        self.b = draws.uniform(13.0, 17.0) if lumbar else draws.uniform(11.0, 15.0)
        if self.kind == "sacrum":
            self.a, self.b = draws.uniform(35.0, 50.0), draws.uniform(12.0, 18.0)
        self.a, self.b = self.a * scale, self.b * scale
        self.canal = draws.uniform(7.0, 10.0) * scale
        self.arch = draws.uniform(3.0, 5.0) * scale
        self.cortex = draws.uniform(1.0, 2.5) * scale
        back = body.at("cavity", math.pi / 2)
        self.v = back - self.b * draws.uniform(0.0, 0.5)
        self.canal_v = self.v + self.b + self.canal * 0.8
        skin = body.at("fat_inner", math.pi / 2)
        room = skin - (self.canal_v + self.canal + self.arch) - 3.0
        self.spinous = max(4.0, min(draws.uniform(20.0, 35.0) * scale, room))
        self.transverse = draws.uniform(14.0, 28.0) * scale
        self.transverse_angle = math.radians(draws.uniform(5.0, 30.0))
        self.wobble = draws.wobble(0.04, 4)

    def paint(self, canvas: Canvas, draws: Draws) -> None:
        # Transverse and spinous processes, the neural arch with the canal, then the body on top.
        width = self.arch * 1.2
        for side in (-1.0, 1.0):
            length = self.transverse
            cu = side * (self.canal + length * 0.5)
            cv = self.canal_v - self.canal * 0.2 + math.sin(self.transverse_angle) * length * 0.5
            canvas.bone(cu, cv, length * 0.5, width * 0.5, side * self.transverse_angle, self.cortex * 0.6)
        canvas.bone(0.0, self.canal_v + self.canal + self.spinous * 0.5, width * 0.5, self.spinous * 0.5 + self.arch,
                    0.0, self.cortex * 0.6)
        canvas.bone(0.0, self.canal_v, self.canal + self.arch, self.canal + self.arch, 0.0, self.cortex,
                    wobble=self.wobble)
        canvas.blob("fluid", 0.0, self.canal_v, self.canal, self.canal * 0.85, 0.0, self.wobble)
        if self.kind == "sacrum":
            canvas.bone(0.0, self.v, self.a, self.b, 0.0, self.cortex, draws.wobble(0.08, 4), power=2.3)
        else:
            canvas.bone(0.0, self.v, self.a, self.b, 0.0, self.cortex, self.wobble, power=2.4)


# -- regions -------------------------------------------------------------------------
class Cavity:
    """Half-width, front and back distances, depth and centre line of a body's cavity (mm)."""

    def __init__(self, body: Body) -> None:
        self.half = 0.5 * (body.at("cavity", 0.0) + body.at("cavity", math.pi))
        self.front, self.back = body.at("cavity", -math.pi / 2), body.at("cavity", math.pi / 2)
        self.depth = 0.5 * (self.front + self.back)  # half the front-to-back extent
        self.middle = 0.5 * (self.back - self.front)  # v of the cavity's centre


def thorax(
    canvas: Canvas, draws: Draws, noise: torch.Generator, body: Body, spine: Spine, scale: float
) -> None:
    """Paint a thorax: lungs with vessels, mediastinum (heart, or great vessels and airways), aorta, ribs, spine."""
    cavity = Cavity(body)
    half, front, depth, middle = cavity.half, cavity.front, cavity.depth, cavity.middle
    full = (slice(None), slice(None))
    lower = draws.chance(0.55)  # heart level, else the great vessels and trachea
    canvas.put(full, canvas.in_cavity(full), "fat", hu=canvas.palette.hu("fat") + draws.uniform(0.0, 40.0))

    # Lungs: each follows the chest wall (the cavity less a pleural inset), denser towards the back.
    gradient = draws.uniform(0.0, 80.0)
    lungs = torch.zeros(canvas.hu.shape, dtype=torch.bool)
    windows = []
    # The deepest point of the cavity lies beside the spine, behind the paraspinal muscles' edge.
    deep = max(body.at("cavity", math.radians(angle)) * math.sin(math.radians(angle)) for angle in range(30, 151, 15))
    for side in (-1.0, 1.0):
        cu = side * half * draws.uniform(0.45, 0.6)
        cv = 0.5 * (deep - front) + depth * draws.uniform(-0.05, 0.05)
        found = canvas.shape(cu, cv, half * draws.uniform(0.6, 0.75), 0.5 * (deep + front) * draws.uniform(1.0, 1.2),
                             side * draws.uniform(-0.15, 0.15), draws.uniform(2.5, 3.5), draws.wobble(0.06, 4))
        inset = draws.uniform(0.5, 2.0) * scale
        if found is not None:
            window, r, outline = found
            lungs[window] |= (r <= outline) & canvas.in_cavity(window, inset)
            windows.append((side, window))
    # The mediastinum, from the sternum to the spine, separates them.
    top, bottom = -front, spine.v
    found = canvas.shape(half * draws.uniform(-0.02, 0.08), 0.5 * (top + bottom), half * draws.uniform(0.1, 0.2),
                         0.5 * (bottom - top), 0.0, draws.uniform(2.0, 3.0), draws.wobble(0.05, 3))
    if found is not None:
        window, r, outline = found
        lungs[window] &= r > outline
    values = canvas.palette.hu("lung") + gradient * ((canvas.v - middle) / depth).clamp(-1, 1)
    canvas.put(full, lungs, "lung", hu=values)
    _lung_vessels(canvas, draws, noise, lungs, windows, half, middle, depth, scale)
    for _ in range(draws.integer(1, 2) if draws.chance(0.25) else 0):  # nodules
        cu, cv = canvas.point(draws, 0.3, 0.85)
        radius = draws.uniform(2.0, 6.0) * scale
        found = canvas.shape(cu, cv, radius, radius * draws.uniform(0.7, 1.0), draws.uniform(0, math.pi), 2.0,
                             draws.wobble(0.1, 3))
        if found is not None:
            window, r, outline = found
            canvas.put(window, (r <= outline) & lungs[window], "muscle", hu=draws.uniform(20.0, 60.0))

    # Mediastinum: the heart in pericardial fat, or the great vessels with the trachea or bronchi.
    aorta = draws.uniform(10.0, 14.0) * scale
    if lower:
        a, b = half * draws.uniform(0.35, 0.5), depth * draws.uniform(0.35, 0.5)
        cu, cv = half * draws.uniform(0.05, 0.25), -front + b * draws.uniform(0.9, 1.3)
        angle, wobble = -math.radians(draws.uniform(20.0, 45.0)), draws.wobble(0.06, 3)
        canvas.blob("fat", cu, cv, a * 1.1, b * 1.1, angle, wobble, inside_cavity=0.0)
        if canvas.palette.enhanced:  # myocardium around bright chambers
            canvas.blob("muscle", cu, cv, a, b, angle, wobble, inside_cavity=0.0,
                        hu=canvas.palette.hu("muscle") + draws.uniform(30.0, 70.0))
            for _ in range(draws.integer(2, 4)):
                du, dv = a * draws.uniform(-0.4, 0.4), b * draws.uniform(-0.4, 0.4)
                canvas.blob("blood", cu + du, cv + dv, a * draws.uniform(0.25, 0.45), b * draws.uniform(0.25, 0.45),
                            draws.uniform(0, math.pi), draws.wobble(0.08, 3), inside_cavity=2.0,
                            hu=canvas.palette.hu("blood") * draws.uniform(0.7, 1.0))
        else:
            canvas.blob("blood", cu, cv, a, b, angle, wobble, inside_cavity=0.0)
    else:
        trachea = spine.v - spine.b - draws.uniform(12.0, 22.0) * scale
        vessels = (  # ascending aorta, pulmonary trunk, superior vena cava: (u, depth behind the front, radius)
            (draws.uniform(-5.0, 15.0), draws.uniform(25.0, 45.0), draws.uniform(13.0, 18.0)),
            (draws.uniform(20.0, 35.0), draws.uniform(25.0, 45.0), draws.uniform(11.0, 15.0)),
            (-draws.uniform(20.0, 30.0), draws.uniform(35.0, 55.0), draws.uniform(8.0, 12.0)),
        )
        for cu, behind, radius in vessels:
            cv = min(-front + behind * scale, trachea - (radius + 12.0) * scale)
            canvas.blob("blood", cu * scale, cv, radius * scale, radius * scale * draws.uniform(0.85, 1.0),
                        inside_cavity=0.0)
        wall = draws.uniform(1.5, 2.5) * scale
        if draws.chance(0.5):  # main bronchi
            for side in (-1.0, 1.0):
                radius = draws.uniform(5.0, 8.0) * scale
                cu = side * draws.uniform(14.0, 22.0) * scale
                canvas.blob("muscle", cu, trachea, radius + wall, radius + wall)
                canvas.blob("gas", cu, trachea, radius, radius * draws.uniform(0.8, 1.0))
        else:
            radius = draws.uniform(8.0, 11.0) * scale
            cu = draws.uniform(-3.0, 3.0) * scale
            canvas.blob("muscle", cu, trachea, radius + wall, radius + wall * 0.8)
            canvas.blob("gas", cu, trachea, radius, radius * draws.uniform(0.8, 1.0))
    # Descending aorta beside the spine, the oesophagus in front of it.
    canvas.blob("blood", spine.a * 0.5 + aorta + draws.uniform(2.0, 8.0) * scale,
                spine.v - spine.b * draws.uniform(0.2, 0.8), aorta, aorta)
    oesophagus = draws.uniform(5.0, 8.0) * scale
    cu, cv = draws.uniform(-4.0, 6.0) * scale, spine.v - spine.b - oesophagus - draws.uniform(1.0, 4.0) * scale
    canvas.blob("bowel", cu, cv, oesophagus, oesophagus * 0.8)
    if draws.chance(0.4):
        canvas.blob("gas", cu, cv, oesophagus * 0.35, oesophagus * 0.3)

    # Chest wall: ribs (cartilage at the front), the sternum, the scapulae in their muscles.
    for side in (-1.0, 1.0):
        count = draws.integer(4, 7)
        for _ in range(count):
            angle = draws.uniform(math.radians(-75.0), math.radians(72.0))
            direction = angle if side > 0 else math.pi - angle
            long, short = draws.uniform(5.0, 14.0) * scale, draws.uniform(3.0, 5.5) * scale
            distance = body.at("cavity", direction) + draws.uniform(1.0, 4.0) * scale + short
            distance = canvas.clamp_to_wall(direction, distance, short + 1.0 * scale)
            cu, cv = distance * math.cos(direction), distance * math.sin(direction)
            front_rib = math.sin(direction) < -0.8
            canvas.bone(cu, cv, long, short, direction + math.pi / 2, draws.uniform(0.8, 1.6) * scale,
                        draws.wobble(0.05, 3), marrow="cartilage" if front_rib else "marrow")
    if draws.chance(0.8):
        thickness = draws.uniform(5.0, 8.0) * scale
        distance = canvas.clamp_to_wall(-math.pi / 2, front + thickness + draws.uniform(0.0, 3.0) * scale, thickness)
        canvas.bone(draws.uniform(-3.0, 3.0) * scale, -distance, draws.uniform(12.0, 20.0) * scale, thickness, 0.0,
                    draws.uniform(1.0, 2.0) * scale)
    if not lower and draws.chance(0.6):
        for side in (-1.0, 1.0):
            direction = math.pi / 2 - side * math.radians(draws.uniform(35.0, 55.0))
            distance = body.at("cavity", direction) + draws.uniform(10.0, 18.0) * scale
            distance = canvas.clamp_to_wall(direction, distance, 12.0 * scale)
            cu, cv = distance * math.cos(direction), distance * math.sin(direction)
            length = draws.uniform(20.0, 40.0) * scale
            angle = direction + math.pi / 2 + side * math.radians(draws.uniform(-15.0, 15.0))
            canvas.blob("muscle", cu, cv, length * 1.15, 12.0 * scale, angle)
            canvas.bone(cu, cv, length, draws.uniform(2.0, 4.0) * scale, angle, draws.uniform(0.8, 1.5) * scale)
    spine.paint(canvas, draws)


def _lung_vessels(
    canvas: Canvas, draws: Draws, noise: torch.Generator, lungs: torch.Tensor,
    windows: Sequence[tuple[float, Window]], half: float, middle: float, depth: float, scale: float,
) -> None:
    """Vessel-like lines in the lungs that branch out from each hilum and thin towards the periphery.

    For each lung a smooth random field ``g`` is read at ``(ψ·max(ρ, ρ₀), ρ)``,
    about the arc length and the distance from the hilum, with a short
    correlation length along the arc and a long one along the radius.  Its
    zero set is then made of wiggly, mostly radial lines whose number grows
    with ``ρ`` beyond ``ρ₀`` (lines appear, like branches).  The vessels are the pixels closer to
    them than half their width, ``|g| / |∇g| < w/2``, interrupted where a
    second field is low.
    """
    reach = 2.0 * max(half, depth)  # mm of radius covered by the field
    arc = draws.uniform(3.0, 6.0) * scale  # mm, correlation along the arc
    radial = draws.uniform(30.0, 60.0) * scale  # mm, along the radius
    width = draws.uniform(1.2, 2.2) * scale  # mm near the hilum, 40 % of it at the periphery
    threshold = draws.uniform(-0.6, 0.0)
    value = canvas.palette.hu("blood") * 0.5 + 10.0
    rows, cols = 64, 1024  # about 2 mm along the arc, 5 mm along the radius
    trunk = draws.uniform(25.0, 45.0) * scale  # ρ₀ in mm
    hila = {side: (side * half * draws.uniform(0.05, 0.2), middle - depth * draws.uniform(0.0, 0.25))
            for side in (-1.0, 1.0)}
    for side, window in windows:
        hu, hv = hila[side]
        # Columns span the arc length ±π·reach, rows the radius 0..reach.
        field = gaussian_field(noise, rows, cols, arc * cols / (2 * math.pi * reach), radial * rows / reach)
        breaks = gaussian_field(noise, rows // 2, cols // 2, 2 * arc * cols / (4 * math.pi * reach),
                                 radial * rows / (2 * reach))
        du, dv = side * (canvas.u[window] - hu), canvas.v[window] - hv  # ψ = ±π lies towards the mediastinum
        rho = torch.hypot(du, dv).clamp(1.0, reach)
        arc_length = torch.atan2(dv, du) * rho.clamp_min(trunk) / (math.pi * reach)
        grid = torch.stack([arc_length, rho / reach * 2 - 1], dim=-1)[None]
        if min(grid.shape[1:3]) < 2:
            continue  # the image edge cuts the lung's box to one row or column: no room for vessels
        g = F.grid_sample(field[None, None], grid, mode="bicubic", padding_mode="border", align_corners=False)
        h = F.grid_sample(breaks[None, None], grid, mode="bilinear", padding_mode="border", align_corners=False)
        g = g[0, 0]
        slope = torch.hypot(*torch.gradient(g, spacing=canvas.step))  # per mm
        band = 0.5 * width * (1.0 - 0.6 * (rho / (0.5 * reach)).clamp(0, 1))
        vessels = lungs[window] & (canvas.u[window] * side > 0) & (g.abs() < band * slope) & (h[0, 0] > threshold)
        vessels &= rho > 0.6 * trunk
        canvas.put(window, vessels, "blood", hu=value)


def _organ_vessels(
    canvas: Canvas, draws: Draws, noise: torch.Generator, window: Window, organ: torch.Tensor, cu: float,
    cv: float, extent: float, scale: float,
) -> None:
    """Vessels in a solid organ, darker than it without contrast and bright with it.

    Like the lung vessels, the band about the zero set of a smooth field
    (read from a 128×128 field over the organ's box, so the same at every
    resolution), interrupted where a second field is low.
    """
    spacing = draws.uniform(10.0, 20.0) * scale  # mm, correlation length
    width = draws.uniform(2.0, 4.0) * scale  # mm
    threshold = draws.uniform(0.0, 0.6)
    field = gaussian_field(noise, 128, 128, spacing * 64 / extent)
    breaks = gaussian_field(noise, 128, 128, spacing * 64 / extent)
    grid = torch.stack([(canvas.u[window] - cu) / extent, (canvas.v[window] - cv) / extent], dim=-1)[None]
    if min(grid.shape[1:3]) < 2:
        return  # the image edge cuts the organ's box to one row or column: no room for vessels
    g = F.grid_sample(field[None, None], grid, mode="bicubic", padding_mode="border", align_corners=False)[0, 0]
    h = F.grid_sample(breaks[None, None], grid, mode="bilinear", padding_mode="border", align_corners=False)[0, 0]
    slope = torch.hypot(*torch.gradient(g, spacing=canvas.step))
    vessels = organ & (g.abs() < 0.5 * width * slope) & (h > threshold)
    if canvas.palette.enhanced:
        value = canvas.palette.hu("blood") * draws.uniform(0.6, 0.9)
    else:
        value = canvas.palette.hu("liver") - draws.uniform(8.0, 20.0)
    canvas.put(window, vessels, "blood", hu=value)


def abdomen(
    canvas: Canvas, draws: Draws, noise: torch.Generator, body: Body, spine: Spine, scale: float
) -> None:
    """Paint an upper abdomen: bowel, colon, liver, spleen, stomach, kidneys, pancreas, great vessels, ribs, spine."""
    cavity = Cavity(body)
    half, depth, middle = cavity.half, cavity.depth, cavity.middle
    _bowel(canvas, draws, draws.integer(8, 20), scale)
    _colon(canvas, draws, body, scale)
    # Solid organs over the bowel: liver with gallbladder, spleen, stomach.
    if draws.chance(0.9):
        size = draws.uniform(0.45, 1.0)
        cu, cv = -half * draws.uniform(0.3, 0.5), middle + depth * draws.uniform(-0.25, 0.1)
        a, b = half * draws.uniform(0.5, 0.75) * size, depth * draws.uniform(0.6, 0.9) * size
        found = canvas.shape(cu, cv, a, b, draws.uniform(-0.3, 0.3), 2.0, draws.wobble(0.08, 4))
        if found is not None:
            window, r, outline = found
            liver = (r <= outline) & canvas.in_cavity(window, 0.0)
            canvas.put(window, liver, "liver")
            _organ_vessels(canvas, draws, noise, window, liver, cu, cv, 1.3 * max(a, b), scale)
        if draws.chance(0.4):
            radius = draws.uniform(10.0, 20.0) * scale
            canvas.blob("fluid", cu + a * draws.uniform(0.2, 0.6), cv - b * draws.uniform(0.0, 0.5), radius,
                        radius * draws.uniform(0.6, 0.9), draws.uniform(0, math.pi), inside_cavity=3.0)
    if draws.chance(0.7):
        canvas.blob("spleen", half * draws.uniform(0.5, 0.7), middle + depth * draws.uniform(0.2, 0.5),
                    half * draws.uniform(0.15, 0.28), depth * draws.uniform(0.25, 0.45),
                    -draws.uniform(0.4, 1.1), draws.wobble(0.08, 4), inside_cavity=0.0)
    if draws.chance(0.6):
        cu, cv = half * draws.uniform(0.15, 0.45), middle - depth * draws.uniform(0.1, 0.45)
        a, b = half * draws.uniform(0.18, 0.35), depth * draws.uniform(0.2, 0.35)
        found = canvas.shape(cu, cv, a, b, draws.uniform(-0.5, 0.5), 2.0, draws.wobble(0.08, 4))
        if found is not None:
            window, r, outline = found
            inside = canvas.in_cavity(window, 1.0)
            canvas.put(window, (r <= outline) & inside, "bowel")
            content = (r <= outline - draws.uniform(3.0, 5.0) * scale) & inside
            gas = content & (canvas.v[window] < cv - b + 2 * b * draws.uniform(0.0, 0.6))  # gas rises to the front
            canvas.put(window, content & ~gas, "fluid", hu=draws.uniform(0.0, 40.0))
            canvas.put(window, gas, "gas")
    # Retroperitoneum: kidneys in perirenal fat, psoas, pancreas, aorta and vena cava.
    if draws.chance(0.75):
        for side in (-1.0, 1.0):
            if draws.chance(0.1):
                continue
            cu = side * (spine.a + draws.uniform(22.0, 40.0) * scale)
            cv = spine.v + draws.uniform(-10.0, 8.0) * scale
            a, b = draws.uniform(15.0, 22.0) * scale, draws.uniform(20.0, 30.0) * scale
            angle = side * draws.uniform(0.3, 0.8)  # long axis towards the front and the side
            margin = draws.uniform(4.0, 12.0) * scale
            canvas.blob("fat", cu, cv, a + margin, b + margin, angle, inside_cavity=0.0)
            canvas.blob("kidney", cu, cv, a, b, angle, draws.wobble(0.04, 3), inside_cavity=0.0)
            if canvas.palette.enhanced:
                canvas.blob("medulla", cu, cv, a * 0.7, b * 0.75, angle, draws.wobble(0.1, 4), inside_cavity=0.0,
                            hu=draws.uniform(*TISSUE_HU["medulla_contrast"]))
            sinus = -side * a * 0.55  # the hilum faces the midline and the front
            su = cu + sinus * math.cos(angle)
            sv = cv + sinus * math.sin(angle) - b * 0.15
            canvas.blob("fat", su, sv, a * 0.45, b * 0.35, angle, draws.wobble(0.1, 3), inside_cavity=0.0)
            if draws.chance(0.4):
                canvas.blob("fluid", su, sv, a * 0.2, b * 0.2, angle, inside_cavity=0.0)
    if draws.chance(0.5):
        _psoas(canvas, draws, spine, scale, 0.5)
    if draws.chance(0.6):
        cv = spine.v - spine.b - draws.uniform(25.0, 45.0) * scale
        canvas.blob("pancreas", half * draws.uniform(-0.05, 0.15), cv, half * draws.uniform(0.22, 0.35),
                    draws.uniform(8.0, 14.0) * scale, draws.uniform(-0.35, 0.15), draws.wobble(0.12, 5),
                    inside_cavity=2.0)
    _great_vessels(canvas, draws, spine, scale)
    # Lower ribs in the flanks, costal cartilage in front.
    if draws.chance(0.6):
        for side in (-1.0, 1.0):
            for _ in range(draws.integer(1, 3)):
                angle = draws.uniform(math.radians(-60.0), math.radians(20.0))
                direction = angle if side > 0 else math.pi - angle
                short = draws.uniform(3.0, 5.0) * scale
                distance = body.at("cavity", direction) + draws.uniform(1.0, 4.0) * scale + short
                distance = canvas.clamp_to_wall(direction, distance, short + 1.0 * scale)
                canvas.bone(distance * math.cos(direction), distance * math.sin(direction),
                            draws.uniform(5.0, 12.0) * scale, short, direction + math.pi / 2,
                            draws.uniform(0.8, 1.5) * scale,
                            marrow="cartilage" if math.sin(direction) < -0.6 else "marrow")
    spine.paint(canvas, draws)


def pelvis(canvas: Canvas, draws: Draws, body: Body, spine: Spine, scale: float) -> None:
    """Paint a pelvis: bowel, colon, the bladder (half the slices), psoas, great vessels, iliac wings, the spine."""
    front = Cavity(body).front
    _bowel(canvas, draws, draws.integer(12, 26), scale)
    _colon(canvas, draws, body, scale)
    if draws.chance(0.5):  # bladder behind the front wall
        radius = draws.uniform(25.0, 50.0) * scale
        canvas.blob("fluid", draws.uniform(-10.0, 10.0) * scale, -front + radius + draws.uniform(5.0, 25.0) * scale,
                    radius * draws.uniform(0.9, 1.3), radius, draws.uniform(-0.3, 0.3), draws.wobble(0.05, 3),
                    inside_cavity=2.0, hu=draws.uniform(0.0, 15.0))
    _psoas(canvas, draws, spine, scale, 1.0)
    _great_vessels(canvas, draws, spine, scale)
    # Iliac wings: curved plates from beside the sacrum forwards and outwards, muscle on both faces.
    for side in (-1.0, 1.0):
        length = draws.uniform(35.0, 55.0) * scale
        thickness = draws.uniform(3.5, 8.0) * scale
        slope = draws.uniform(0.35, 0.9)  # radians from the lateral axis, the front end outwards
        angle = -side * slope
        bend = side * draws.uniform(0.0, 0.008) / scale  # hollow towards the inside of the pelvis
        cu = side * (spine.a + length * math.cos(slope) * draws.uniform(0.8, 1.1))
        cv = spine.v - length * math.sin(slope) * draws.uniform(0.6, 0.9)
        direction = math.atan2(cv, cu)
        room = body.at("fat_inner", direction) - 10.0 * scale - math.hypot(cu, cv)
        if room < 0:
            continue
        canvas.blob("muscle", cu, cv, length * 1.1, thickness + draws.uniform(8.0, 16.0) * scale, angle,
                    inside_cavity=-3.0 * thickness, bend=bend)
        canvas.bone(cu, cv, length, thickness, angle, draws.uniform(1.5, 3.0) * scale, draws.wobble(0.05, 3),
                    bend=bend)
    spine.paint(canvas, draws)


def _great_vessels(canvas: Canvas, draws: Draws, spine: Spine, scale: float) -> None:
    """The aorta (left, sometimes with a calcified wall) and inferior vena cava (right) in front of the spine."""
    radius = draws.uniform(8.0, 13.0) * scale
    cu, cv = draws.uniform(3.0, 12.0) * scale, spine.v - spine.b - radius - draws.uniform(0.0, 4.0) * scale
    canvas.blob("blood", cu, cv, radius, radius)
    if draws.chance(0.3):
        angle = draws.uniform(0, 2 * math.pi)
        size = draws.uniform(0.7, 1.4) * canvas.pixel_mm
        canvas.blob("calcification", cu + radius * math.cos(angle), cv + radius * math.sin(angle), size,
                    size * 0.7, angle + math.pi / 2, hu=draws.uniform(*TISSUE_HU["calcification"]))
    canvas.blob("blood", -draws.uniform(18.0, 30.0) * scale, spine.v - spine.b - draws.uniform(8.0, 15.0) * scale,
                draws.uniform(9.0, 15.0) * scale, draws.uniform(7.0, 12.0) * scale, draws.uniform(-0.3, 0.3))


def _bowel(canvas: Canvas, draws: Draws, count: int, scale: float) -> None:
    """Bowel loops: a wall around gas, fluid or mixed contents (gas in front)."""
    for _ in range(count):
        cu, cv = canvas.point(draws, 0.05, 0.8)
        radius = draws.uniform(9.0, 24.0) * scale
        a, b, angle = radius, radius * draws.uniform(0.5, 1.0), draws.uniform(0, math.pi)
        found = canvas.shape(cu, cv, a, b, angle, 2.0, draws.wobble(0.1, 4))
        if found is None:
            continue
        window, r, outline = found
        inside = canvas.in_cavity(window, 1.0)
        canvas.put(window, (r <= outline) & inside, "bowel")
        content = (r <= outline - draws.uniform(1.5, 3.5) * scale) & inside
        kind = draws.uniform(0.0, 1.0)
        if kind < 0.35:
            canvas.put(window, content, "gas")
        elif kind < 0.75:
            canvas.put(window, content, "fluid", hu=draws.uniform(0.0, 30.0))
        else:
            gas = content & (canvas.v[window] < cv + b * draws.uniform(-0.6, 0.6))
            canvas.put(window, content & ~gas, "fluid", hu=draws.uniform(-20.0, 40.0))
            canvas.put(window, gas, "gas")


def _colon(canvas: Canvas, draws: Draws, body: Body, scale: float) -> None:
    """Ascending and descending colon in the flanks, mostly gas."""
    for side in (-1.0, 1.0):
        if not draws.chance(0.6):
            continue
        direction = (0.0 if side > 0 else math.pi) + side * draws.uniform(-0.5, 0.3)
        radius = draws.uniform(14.0, 28.0) * scale
        distance = max(0.0, body.at("cavity", direction) - radius - draws.uniform(2.0, 10.0) * scale)
        cu, cv = distance * math.cos(direction), distance * math.sin(direction)
        canvas.blob("bowel", cu, cv, radius, radius * draws.uniform(0.7, 1.0), draws.uniform(0, math.pi),
                    draws.wobble(0.08, 4), inside_cavity=0.5)
        canvas.blob("gas", cu, cv, radius - 2.5 * scale, radius * 0.65, draws.uniform(0, math.pi),
                    draws.wobble(0.15, 5), inside_cavity=3.0, hu=draws.uniform(-1000.0, -600.0))


def _psoas(canvas: Canvas, draws: Draws, spine: Spine, scale: float, size: float) -> None:
    for side in (-1.0, 1.0):
        radius = draws.uniform(12.0, 25.0) * scale * size
        canvas.blob("muscle", side * (spine.a + radius * 0.7), spine.v - spine.b * draws.uniform(0.0, 0.5),
                    radius, radius * draws.uniform(0.7, 1.0), side * draws.uniform(0.0, 0.6), draws.wobble(0.06, 3),
                    inside_cavity=0.0)


def calcifications(canvas: Canvas, draws: Draws) -> None:
    """0–4 small dense dots of 1–3 pixels anywhere in the cavity."""
    for _ in range(draws.integer(0, 4)):
        cu, cv = canvas.point(draws, 0.0, 0.9)
        radius = draws.uniform(0.6, 1.4) * canvas.pixel_mm
        canvas.blob("calcification", cu, cv, radius, radius * draws.uniform(0.7, 1.0), draws.uniform(0, math.pi),
                    inside_cavity=0.0, hu=draws.uniform(*TISSUE_HU["calcification"]))

