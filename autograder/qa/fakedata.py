"""A tiny fake CelebA folder in torchvision's real on-disk layout, for tests (never for figures).

    root/celeba/img_align_celeba/000001.jpg ...      178 x 218 RGB JPEGs (a drawn face-like blob)
    root/celeba/list_eval_partition.txt              "000001.jpg 0" (0 train, 1 valid, 2 test)
    root/celeba/identity_CelebA.txt, list_attr_celeba.txt, list_bbox_celeba.txt,
    root/celeba/list_landmarks_align_celeba.txt

The annotation files cannot match the published MD5 checksums that torchvision.datasets.CelebA
verifies, so code that loads this folder must relax that one check: `accept_fake_celeba()`.
"""

import contextlib
import os
import random
from pathlib import Path

ATTRIBUTES = ("5_o_Clock_Shadow Arched_Eyebrows Attractive Bags_Under_Eyes Bald Bangs Big_Lips Big_Nose "
              "Black_Hair Blond_Hair Blurry Brown_Hair Bushy_Eyebrows Chubby Double_Chin Eyeglasses Goatee "
              "Gray_Hair Heavy_Makeup High_Cheekbones Male Mouth_Slightly_Open Mustache Narrow_Eyes No_Beard "
              "Oval_Face Pale_Skin Pointy_Nose Receding_Hairline Rosy_Cheeks Sideburns Smiling Straight_Hair "
              "Wavy_Hair Wearing_Earrings Wearing_Hat Wearing_Lipstick Wearing_Necklace Wearing_Necktie Young").split()


def make_fake_celeba(root, n_images=40, seed=0):
    """Write a fake CelebA with n_images (about 80% train, 10% valid, 10% test); returns its folder."""
    from PIL import Image, ImageDraw
    rng = random.Random(seed)
    folder = Path(root) / "celeba"
    images = folder / "img_align_celeba"
    images.mkdir(parents=True, exist_ok=True)
    names = [f"{i:06d}.jpg" for i in range(1, n_images + 1)]
    for name in names:
        image = Image.new("RGB", (178, 218), tuple(rng.randrange(40, 200) for _ in range(3)))
        draw = ImageDraw.Draw(image)
        skin = tuple(rng.randrange(120, 255) for _ in range(3))
        draw.ellipse((39 + rng.randrange(-8, 8), 44, 139 + rng.randrange(-8, 8), 174), fill=skin)
        for eye_x in (70, 108):
            draw.ellipse((eye_x - 7, 95, eye_x + 7, 105), fill=(30, 30, 30))
        smile = rng.random() < 0.5
        draw.arc((68, 120, 110, 150), 20 if smile else 200, 160 if smile else 340, fill=(120, 20, 20), width=4)
        image.save(images / name, quality=90)
    partition = [0 if i < 0.8 * n_images else (1 if i < 0.9 * n_images else 2) for i in range(n_images)]
    header_count = f"{n_images}\n"
    files = {
        "list_eval_partition.txt": "".join(f"{n} {p}\n" for n, p in zip(names, partition)),
        "identity_CelebA.txt": "".join(f"{n} {rng.randrange(1, 100)}\n" for n in names),
        "list_attr_celeba.txt": header_count + " ".join(ATTRIBUTES) + "\n" + "".join(
            n + " " + " ".join(rng.choice(("-1", "1")) for _ in ATTRIBUTES) + "\n" for n in names),
        "list_bbox_celeba.txt": header_count + "image_id x_1 y_1 width height\n" + "".join(
            f"{n} 40 40 100 140\n" for n in names),
        "list_landmarks_align_celeba.txt": header_count + "lefteye_x lefteye_y righteye_x righteye_y nose_x "
                                           "nose_y leftmouth_x leftmouth_y rightmouth_x rightmouth_y\n" + "".join(
            f"{n} 70 100 108 100 89 125 72 145 106 145\n" for n in names),
    }
    for name, text in files.items():
        (folder / name).write_text(text)
    return folder


@contextlib.contextmanager
def accept_fake_celeba():
    """Within the block, torchvision's CelebA checks that its files are present instead of their MD5s."""
    import torchvision
    celeba = torchvision.datasets.CelebA
    original = celeba._check_integrity

    def files_present(self):
        folder = os.path.join(self.root, self.base_folder)
        return os.path.isdir(os.path.join(folder, "img_align_celeba")) and all(
            os.path.isfile(os.path.join(folder, filename)) for _, _, filename in self.file_list
            if not filename.endswith(".zip"))

    celeba._check_integrity = files_present
    try:
        yield
    finally:
        celeba._check_integrity = original
