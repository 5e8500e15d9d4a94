// SpineWatch CT viewer: NiiVue on the CT with the vertebra and lytic-lesion overlays.
// Built into ONE vendored file (npm run build -> ../static/web/viewer.bundle.js); the page loads
// it from our own static files (no CDN, CSP script-src 'self'). Configuration comes from the
// JSON island #sw-viewer-config (volume URLs, label colours); no inline script.
import { Niivue, SLICE_TYPE } from "@niivue/niivue";

// Window presets in HU (width / level): bone 2000/500, soft tissue 400/40 -- the usual CT
// display windows.
const WINDOWS = {
  bone: { min: 500 - 1000, max: 500 + 1000 },
  soft: { min: 40 - 200, max: 40 + 200 },
};
const VIEWS = {
  multiplanar: SLICE_TYPE.MULTIPLANAR,
  axial: SLICE_TYPE.AXIAL,
  sagittal: SLICE_TYPE.SAGITTAL,
  coronal: SLICE_TYPE.CORONAL,
};

function labelColormap(colours) {
  const cm = { R: [0], G: [0], B: [0], A: [0], I: [0], labels: [""] };
  for (const c of colours) {
    cm.R.push(c.rgb[0]);
    cm.G.push(c.rgb[1]);
    cm.B.push(c.rgb[2]);
    cm.A.push(255);
    cm.I.push(c.value);
    cm.labels.push(c.level);
  }
  return cm;
}

function press(buttons, active) {
  for (const b of buttons) b.setAttribute("aria-pressed", b === active ? "true" : "false");
}

function formatMM(mm) {
  const [x, y, z] = mm;
  const side = (v, pos, neg) => `${v >= 0 ? pos : neg} ${Math.abs(v).toFixed(1)}`;
  return `${side(x, "R", "L")} · ${side(y, "A", "P")} · ${side(z, "S", "I")} mm`;
}

async function boot() {
  const root = document.getElementById("sw-viewer");
  const island = document.getElementById("sw-viewer-config");
  if (!root || !island) return;
  const config = JSON.parse(island.textContent);
  const status = document.getElementById("sw-viewer-status");
  const canvas = document.getElementById("sw-viewer-canvas");
  const nv = new Niivue({
    backColor: [0, 0, 0, 1],
    crosshairColor: [1, 0.85, 0, 1],
    show3Dcrosshair: false,
    isColorbar: false,
    dragAndDropEnabled: false,
    loadingText: "Loading the CT…",
    // the reading-room conventions: patient's left on the screen's right (axial, coronal),
    // anterior to the left in the sagittal view
    isRadiologicalConvention: true,
    sagittalNoseLeft: true,
  });
  window.spinewatchViewer = { nv, ready: false };
  try {
    await nv.attachToCanvas(canvas);
    await nv.loadVolumes([
      { url: config.ct, name: "ct.nii.gz", colormap: "gray", cal_min: WINDOWS.bone.min, cal_max: WINDOWS.bone.max },
      { url: config.labels, name: "labels.nii.gz", opacity: 0.35 },
      { url: config.lesions, name: "lesions.nii.gz", colormap: "red", opacity: 0.85, cal_min: 0.5, cal_max: 1 },
    ]);
  } catch (err) {
    root.dataset.state = "error";
    status.textContent = `The CT could not be loaded: ${err && err.message ? err.message : err}`;
    return;
  }
  nv.volumes[1].setColormapLabel(labelColormap(config.labelColours || []));
  nv.updateGLVolume();
  nv.setSliceType(SLICE_TYPE.MULTIPLANAR);
  nv.onLocationChange = (loc) => {
    if (!loc || !loc.mm) return;
    const mm = Array.from(loc.mm).slice(0, 3);
    root.dataset.crosshairMm = mm.map((v) => v.toFixed(1)).join(",");
    const hu = loc.values && loc.values[0] ? ` · ${Math.round(loc.values[0].value)} HU` : "";
    status.textContent = `${formatMM(mm)}${hu}`;
  };

  const viewButtons = [...document.querySelectorAll("[data-view]")];
  for (const b of viewButtons) {
    b.addEventListener("click", () => {
      nv.setSliceType(VIEWS[b.dataset.view]);
      root.dataset.view = b.dataset.view;
      press(viewButtons, b);
    });
  }
  const windowButtons = [...document.querySelectorAll("[data-window]")];
  for (const b of windowButtons) {
    b.addEventListener("click", () => {
      const w = WINDOWS[b.dataset.window];
      nv.volumes[0].cal_min = w.min;
      nv.volumes[0].cal_max = w.max;
      nv.updateGLVolume();
      root.dataset.window = b.dataset.window;
      press(windowButtons, b);
    });
  }
  for (const box of document.querySelectorAll("[data-overlay]")) {
    box.addEventListener("change", () => {
      const index = box.dataset.overlay === "labels" ? 1 : 2;
      nv.setOpacity(index, box.checked ? (index === 1 ? 0.35 : 0.85) : 0);
    });
  }
  const rows = [...document.querySelectorAll(".level-jump")];
  for (const b of rows) {
    b.addEventListener("click", () => {
      const mm = [Number(b.dataset.x), Number(b.dataset.y), Number(b.dataset.z)];
      nv.scene.crosshairPos = nv.mm2frac(mm);
      nv.drawScene();
      nv.createOnLocationChange();
      root.dataset.level = b.dataset.level;
      for (const r of rows) r.closest("tr").classList.toggle("is-current", r === b);
    });
  }
  root.dataset.view = "multiplanar";
  root.dataset.window = "bone";
  nv.createOnLocationChange();
  root.dataset.state = "ready";
  window.spinewatchViewer.ready = true;
}

if (document.readyState === "loading") {
  document.addEventListener("DOMContentLoaded", boot);
} else {
  boot();
}
