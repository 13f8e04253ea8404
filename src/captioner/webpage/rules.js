// decode/rules.py in the page: the language's rules from policy.json and the colour words an image may not say.
"use strict";

(() => {
  const { shownColours } = window.captionerColours;

  // rules.Rules.forbid for one image: the colour words of the language (policy.json's languages[tag].colours: id ->
  // the colours the word names) whose colours it does not show
  function forbidden(model, x, tag) {
    const shown = shownColours(x, model.spec, model.policy.colours), forbid = new Uint8Array(model.itos.length);
    for (const [id, cs] of Object.entries(model.policy.languages[tag].colours)) if (!cs.some((c) => shown.has(c))) forbid[Number(id)] = 1;
    return forbid;
  }

  // Vocab.language, then the language's rules in policy.json: the token its captions start from, the words outside it
  function language(model, lang) {
    const known = Object.keys(model.langs);
    if (!known.length && lang && lang !== "en") throw new Error(`language '${lang}': this model was trained without language tags; it writes in its training captions' language only`);
    const tag = !known.length ? "en" : lang || (known.includes("en") ? "en" : known[0]);
    if (known.length && !known.includes(tag)) throw new Error(`language '${tag}' is unknown to this model; it knows ${known.join(", ")}`);
    const rules = model.policy.languages[tag];
    let outside = null;
    if (rules.allowed) {
      outside = new Uint8Array(model.policy.vocab_size).fill(1);
      for (const i of rules.allowed) outside[i] = 0;
    }
    return { first: rules.first, outside, tag, rules };
  }

  // rules.Rules.concept_must: the word a caption must say to name the concept of the English caption `english`:
  // the translation (rules.rename) of its last word that has one and that the image does not forbid; null: none
  function conceptMust(rules, english, forbid) {
    for (const t of english.slice().reverse()) {
      const w = rules.rename === null ? t : rules.rename[String(t)];
      if (w !== undefined && !forbid[w]) return w;
    }
    return null;
  }

  // rules.Rules.sayable_must: whether the concept language's caption `tokens` must say one of its sayable words
  // (policy.json's languages[tag].sayable): some other language's rename says none of its words
  function sayableMust(model, tag, tokens) {
    const others = Object.entries(model.policy.languages).filter(([t, o]) => t !== tag && o.rename && Object.keys(o.rename).length);
    const unsayable = others.some(([, o]) => !tokens.some((w) => String(w) in o.rename));
    return model.policy.languages[tag].sayable.length > 0 && unsayable;
  }

  // rules.Rules.with_article: "a" before a bare countable noun phrase (English's rules); else null
  function withArticle(rules, tokens) {
    const bare = tokens.length && !rules.determiners.includes(tokens[0]) && rules.countable.includes(tokens[tokens.length - 1]);
    return rules.article >= 0 && bare ? [rules.article, ...tokens] : null;
  }

  // rules.Rules.agreeing: in a caption of at most gendered_max words, a first word that is an indefinite article
  // made the one its noun (at noun_at; -1: the last word) takes (policy.json's languages[tag].genders: noun id ->
  // article id; "ein katze" -> "eine katze"); else null
  function agreeing(rules, tokens) {
    const short = tokens.length >= 2 && tokens.length <= rules.gendered_max && rules.indefinite.includes(tokens[0]);
    const art = short ? rules.genders[String(tokens.at(rules.noun_at))] : undefined;
    return art !== undefined && art !== tokens[0] ? [art, ...tokens.slice(1)] : null;
  }

  window.captionerRules = { forbidden, language, conceptMust, sayableMust, withArticle, agreeing };
})();
