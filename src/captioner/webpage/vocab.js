// text/vocab.py in the page: the vocabulary's special ids (Vocab's first four entries) and Vocab.decode's
// articles, read from policy.json.
"use strict";

(() => {
  const PAD = 0, UNK = 1, START = 2, END = 3, NEG = -1e9, BANNED = [PAD, START, UNK]; // text.vocab.SPECIALS

  // articles: policy.json's articles (text.ARTICLE_PATTERNS), matched at the word's start as Python's re.match
  function article(word, articles) {
    const w = word.toLowerCase(), consonant = new RegExp(`^${articles.consonant_sound}`), silent = new RegExp(`^${articles.silent_h}`);
    return ("aeiou".includes(w[0] || "-") && !consonant.test(w)) || silent.test(w) ? "an" : "a";
  }
  function decode(model, tokens) {
    const words = tokens.map((t) => model.itos[t]);
    for (let i = 0; i + 1 < words.length; i++) if ((words[i] === "a" || words[i] === "an") && /^\p{L}/u.test(words[i + 1])) words[i] = article(words[i + 1], model.policy.articles);
    return words.join(" ");
  }

  window.captionerVocab = { PAD, UNK, START, END, NEG, BANNED, article, decode };
})();
