#!/usr/bin/env python3
# Where the never-seen Fashion-MNIST classes land in a run's latent space: for each unseen class, the
# nearest seen-class centroid (cosine on q(z|image) means of the test set) of each of its images,
# and how often its own centroid is the nearest of all ten. No numpy needed (reads .npy directly).
# Usage: mmkt embed --run RUN --out DIR && python3 experiments/fashion_intrusions.py DIR
import array, ast, math, struct, sys, collections
def load(path):
    b = open(path, 'rb').read()
    assert b[:6] == b'\x93NUMPY'
    hlen = struct.unpack('<H', b[8:10])[0]
    h = ast.literal_eval(b[10:10 + hlen].decode())
    data = b[10 + hlen:]
    code = {'<f4': 'f', '<i8': 'q', '<f8': 'd'}[h['descr']]
    a = array.array(code); a.frombytes(data)
    return a, h['shape']
d = sys.argv[1]
mu, (n, dim) = load(d + '/mu_image.npy')
lab, _ = load(d + '/labels.npy')
names = ['top', 'trouser', 'pullover', 'dress', 'coat', 'sandal', 'shirt', 'sneaker', 'bag', 'ankle boot']
unseen = {3, 5, 6}
rows = [mu[i*dim:(i+1)*dim] for i in range(n)]
def unit(v):
    s = math.sqrt(sum(x*x for x in v)) or 1.0
    return [x/s for x in v]
rows = [unit(r) for r in rows]
cent = {}
for c in range(10):
    members = [rows[i] for i in range(n) if lab[i] == c]
    cent[c] = unit([sum(col)/len(members) for col in zip(*members)])
def nearest(v, classes):
    return max(classes, key=lambda c: sum(a*b for a, b in zip(v, cent[c])))
seen = [c for c in range(10) if c not in unseen]
print("unseen class -> nearest seen-class centroid (cosine), share of its test images")
for u in sorted(unseen):
    idx = [i for i in range(n) if lab[i] == u]
    cnt = collections.Counter(nearest(rows[i], seen) for i in idx)
    own = sum(1 for i in idx if nearest(rows[i], range(10)) == u)
    print(f"  {names[u]:8s}: " + ", ".join(f"{names[c]} {k/len(idx):.2f}" for c, k in cnt.most_common(3)) +
          f"; nearest of all 10 centroids is its own: {own/len(idx):.2f}")
# centroid cosine between each unseen centroid and seen centroids
print("cosine of unseen centroids to the closest seen centroid:")
for u in sorted(unseen):
    best = max(seen, key=lambda c: sum(a*b for a, b in zip(cent[u], cent[c])))
    print(f"  {names[u]} ~ {names[best]}: {sum(a*b for a, b in zip(cent[u], cent[best])):.3f}")
