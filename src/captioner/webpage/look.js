// sights/look.py in the page: photo or drawing, and the people in it, under policy.json's settings.
"use strict";

(() => {
  const { photoLike } = window.captionerPhoto, { squarePixels, bilinear } = window.captionerSpec;

  // sights.look's photo test and people: people.py's detectors on the square of a photo (photoLike's verdict on
  // the pixels and the encoder's pooled vector); a
  // drawing is 0 people, unless it is exactly grey and NanoDet finds persons at its grey threshold (people.grey_people):
  // then it is a photo of them. people false: no detectors (people null for a photo, as Captioner people=False).
  async function look(model, x, pooled, people = true) {
    const photo = photoLike(x, model.spec.input_size, pooled, model.policy.photo);
    if (!people) return { photo, seen: photo ? null : 0 };
    const img = squarePixels(x, model.spec);
    if (photo) return { photo, seen: await captionerPeople.count(model.people, img, bilinear) };
    const seen = await captionerPeople.grey(model.people, img, bilinear);
    return { photo: seen > 0, seen };
  }

  window.captionerLook = { look };
})();
