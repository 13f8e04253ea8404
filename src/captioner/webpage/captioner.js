// api.py in the page: load an export's graphs and policy.json, and caption an image as Captioner.caption does,
// through the modules named after the Python ones they port (vocab, spec, photo, colours, people, look, search,
// rules, onnx_runtime). Nothing leaves the machine. Exposed as window.captioner for the page and its tests.
"use strict";

(() => {
  const { PAD, END, decode } = window.captionerVocab, { preprocess, squarePixels, bilinear } = window.captionerSpec;
  const { flatShare, photoScore } = window.captionerPhoto, { shownColours } = window.captionerColours;
  const { look } = window.captionerLook, { forbidden, language, conceptMust, sayableMust, withArticle, agreeing } = window.captionerRules;
  const { beamSearch, constrainedBeamSearch, say, distinct } = window.captionerSearch, { Stepper, encode } = window.captionerOnnx;

  async function load(base = new URL(".", document.baseURI).href.replace(/\/$/, "")) {
    const get = async (f) => { const r = await fetch(`${base}/${f}`); if (!r.ok) throw new Error(`${f}: HTTP ${r.status}`); return r; };
    const [manifest, vocab, spec, labels, policy] = await Promise.all(["manifest.json", "vocab.json", "encoder.json", "labels.json", "policy.json"].map(async (f) => (await get(f)).json()));
    // threads need cross-origin isolation (`captioner serve --page` sends its headers); a plain static server runs one
    ort.env.wasm.numThreads = self.crossOriginIsolated ? navigator.hardwareConcurrency : 1; // a thread per core
    ort.env.wasm.wasmPaths = `${base}/ort/`;
    const session = async (f) => ort.InferenceSession.create(new Uint8Array(await (await get(f)).arrayBuffer()), { executionProviders: ["wasm"] });
    const { graphs } = await (await get("page.json")).json(); // the graphs write_page put in the page
    const [encoder, init, decoder] = await Promise.all([graphs.encoder, graphs.init, graphs.decoder].map(session));
    const people = await captionerPeople.load(session, policy.detectors);
    const noEnd = new Uint8Array(policy.vocab_size);
    for (const i of policy.no_end) noEnd[i] = 1;
    const repeat = new Uint8Array(policy.vocab_size); // policy.json's repeatable: words that may follow themselves
    for (const i of policy.repeatable) repeat[i] = 1;
    const langs = policy.tagged ? policy.languages : {}; // the languages a caption may be asked in
    return { manifest, policy, itos: vocab.itos, langs, spec, labels, encoder, init, decoder, names: manifest.state, noEnd, repeat, people };
  }

  // rules._search for one image in one language (rules from language()): no colour the image does not show; in a
  // photo, "a person" / "people" where people are found and no word for a person where none are (unless an offered
  // class says one); else the translation of the English caption's concept (english: its tokens; outside
  // English), else the copy path's naming of a confident photo (outside English, by the class word's translation, policy.json's rename),
  // else (the concept language) a countable noun every language can say where some cannot say the caption (sayableMust);
  // in English, "a" before a bare countable noun; elsewhere, an indefinite article agreeing with its noun
  async function searchIn(model, st, s0, x, lang, photo, seen, beam, nBest, english = null, articles = true) {
    const m = model.manifest, { first, outside, tag, rules: words } = language(model, lang);
    const said = (w) => (words.rename === null ? w : words.rename[String(w)]); // rules.Rules.said (undefined: none)
    st.first = first;
    st.forbid = forbidden(model, x, tag);
    if (outside) st.forbid.forEach((_, i) => { if (outside[i]) st.forbid[i] = 1; });
    if (photo && seen === 0) { // rules.Rules.forbid: no person where none was found, unless an offered class says one
      const offered = new Set(s0 ? Array.from(s0.copy_w.data, (c) => said(Number(c))) : []);
      for (const w of words.says_person) if (!offered.has(w)) st.forbid[w] = 1;
    }
    let caps = await beamSearch(st, beam, m.max_len, nBest), c = null;
    // constrained.require: the best caption saying one of `ids`, unless the first already says one
    const search = async (ids) => (ids.some((w) => caps[0].tokens.includes(w)) ? null : constrainedBeamSearch(st, ids, beam, m.max_len));
    const exact = seen > 1 ? words.people : words.person, concept = english ? conceptMust(words, english, st.forbid) : null;
    let named = null; // rules.Rules.confident: the top class's word, where its probability (summed over the offered
    if (s0 && model.policy.name_threshold > 0 && photo) { // classes that say it) reaches the threshold
      const w = Number(s0.copy_w.data[0]);
      let p = 0;
      s0.copy_w.data.forEach((o, j) => { if (Number(o) === w) p = Math.fround(p + s0.copy_p.data[j]); });
      if (p >= model.policy.name_threshold && w !== PAD && said(w) !== undefined) named = said(w);
    }
    if (photo && seen > 0 && exact.length) c = await say(st, exact); // rules.Rules.musts: what the photo must say
    else if (concept !== null) c = await search([concept]);
    else if (named !== null) c = await search([named]);
    else if (english === null && sayableMust(model, tag, caps[0].tokens)) {
      const s = await constrainedBeamSearch(st, words.sayable, beam, m.max_len); // constrained.require's `within`
      if (s && s.confidence >= caps[0].confidence - words.sayable_within) c = s;
    }
    if (c) caps = [c, ...caps.filter((o) => o.tokens.join() !== c.tokens.join()).slice(0, Math.max(0, caps.length - 1))];
    if (!articles) return caps; // the concept pass: "a" translates to nothing
    const articled = []; // rules.Rules.styled: English's "a", the others' article agreeing with its noun
    for (const o of caps) { const t = withArticle(words, o.tokens) || agreeing(words, o.tokens); articled.push(t ? await say(st, t) : o); }
    return distinct(articled);
  }

  // Api.caption_tensors for one image, under decode/rules.py's rules (searchIn); outside English, the image is
  // captioned in the concept language first (policy.json's concept) and the caption says that concept
  async function captionTensor(model, x, beam = 3, nBest = 3, lang = null, people = true) {
    const { tag } = language(model, lang), concept = model.policy.concept; // the concept language, or null
    const { feats, logits, pooled } = await encode(model, x), st = new Stepper(model, feats);
    const { photo, seen } = await look(model, x, pooled, people); // seen null: not looked for
    const s0 = model.manifest.kind === "copy" ? await st.start(1) : null;
    const english = concept !== null && concept !== tag ? (await searchIn(model, st, s0, x, concept, photo, seen, beam, 1, null, false))[0].tokens : null;
    const caps = await searchIn(model, st, s0, x, lang, photo, seen, beam, nBest, english);
    const max = Math.max(...logits), e = Array.from(logits, (v) => Math.exp(v - max)), z = e.reduce((a, b) => a + b, 0);
    const tags = e.map((v, i) => [v / z, i]).sort((a, b) => b[0] - a[0] || a[1] - b[1]).slice(0, 5).map(([p, i]) => ({ label: model.labels[i], probability: p }));
    const text = (o) => decode(model, o.tokens);
    return { caption: text(caps[0]), confidence: caps[0].confidence, alternatives: caps.slice(1).map((o) => ({ caption: text(o), confidence: o.confidence })), tags, photo, people: seen };
  }

  async function pixels(blob) {
    const bmp = await createImageBitmap(blob, { colorSpaceConversion: "none", premultiplyAlpha: "none", imageOrientation: "from-image" });
    const canvas = new OffscreenCanvas(bmp.width, bmp.height), ctx = canvas.getContext("2d");
    ctx.drawImage(bmp, 0, 0);
    return { data: ctx.getImageData(0, 0, bmp.width, bmp.height).data, width: bmp.width, height: bmp.height };
  }

  // people false: no people detectors (as Captioner people=False, `caption --no-people`): faster, no person rule
  async function captionBlob(model, blob, beam = 3, nBest = 3, lang = null, people = true) {
    language(model, lang); // an unknown language fails before the image is read
    const px = await pixels(blob);
    return captionTensor(model, preprocess(px.data, px.width, px.height, model.spec), beam, nBest, lang, people);
  }

  window.captioner = { load, language, preprocess, pixels, flatShare, photoScore, shownColours, forbidden, encode, Stepper, beamSearch, constrainedBeamSearch, say, squarePixels, bilinear, look, captionTensor, captionBlob, decode };
})();
